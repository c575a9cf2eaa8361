// Package dirsync keeps one tenant's directory copy current: it walks
// users/delta and groups/delta page by page, applies each page with its
// checkpoint in one store transaction, falls back to a full round when a
// delta or skip token is stale, and sweeps what a full round did not see.
//
// It declares the small interfaces it needs (Source, Store) and imports no
// concrete store or Graph client: graph.Client is a Source and
// postgres.Store a Store as they are.
package dirsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Resources, in the order a run syncs them.
const (
	ResourceUsers  = "users"
	ResourceGroups = "groups"
)

// Source reads delta pages; link "" starts a full round. Its failures are
// *domain.Fault: FaultResyncRequired starts a full round.
type Source interface {
	UsersDelta(ctx context.Context, tenantID, link string, p *domain.UsersPage) error
	GroupsDelta(ctx context.Context, tenantID, link string, p *domain.GroupsPage) error
}

// Store persists pages atomically with their checkpoint, and sync runs.
type Store interface {
	SyncStateList(ctx context.Context, tenantID string) ([]domain.SyncCheckpoint, error)
	// DirectoryUsersApply and DirectoryGroupsApply write one page and
	// c.Checkpoint in one transaction, and only while c.Lease is held
	// (domain.ErrSyncLeaseLost otherwise); with c.Sweep they also delete
	// rows whose seen_round < c.Checkpoint.Round.
	DirectoryUsersApply(ctx context.Context, tenantID string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error)
	DirectoryGroupsApply(ctx context.Context, tenantID string, p *domain.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error)
	SyncRunStart(ctx context.Context, tenantID string, kind domain.SyncKind, startedAt time.Time) (int64, error)
	// SyncRunFinish records how run ended, writing it whole when it was
	// never started (ID 0), and returns its ID.
	SyncRunFinish(ctx context.Context, run domain.SyncRun) (int64, error)
}

// Syncer syncs tenants. It is safe for concurrent use on different tenants;
// callers make sure one tenant is synced by one Syncer call at a time (the
// worker holds the tenant's lease and passes it in Options).
type Syncer struct {
	src   Source
	store Store
	now   func() time.Time
}

// New returns a Syncer; now may be nil (time.Now).
func New(src Source, store Store, now func() time.Time) *Syncer {
	if now == nil {
		now = time.Now
	}
	return &Syncer{src: src, store: store, now: now}
}

// Options change one run.
type Options struct {
	// Sequential fetches each page only after the previous one is applied,
	// instead of overlapping the two; benchmarks use it as the baseline.
	Sequential bool
	// FullJob, when not 0, forces a full round of every resource even where
	// a deltaLink is saved. It names the request (the job ID): a resource
	// whose checkpoint already carries it resumes that round instead of
	// starting another, so a forced full sync that snoozes or is retried
	// finishes its round.
	FullJob int64
	// Until, when set, ends the run after the first page committed past it
	// with ErrSliceEnded: a long sync is done as a chain of bounded jobs,
	// each resuming from the checkpoint.
	Until time.Time
	// Lease is the tenant's sync lease: every page is committed only while
	// it is held, and extends it.
	Lease domain.SyncLease
}

// ErrSliceEnded ends a run that reached Options.Until with work left; the
// next run resumes from the last committed page.
var ErrSliceEnded = errors.New("sync slice ended; the sync continues from its checkpoint")

// Sync runs one sync of tenantID: users, then groups, each from its
// checkpoint to a new deltaLink. The run is recorded in sync_runs whatever
// happens; the returned run carries its counts. A failed page changes
// nothing, and the next Sync resumes after the last committed page.
func (s *Syncer) Sync(ctx context.Context, tenantID string, opt Options) (domain.SyncRun, error) {
	state, err := s.store.SyncStateList(ctx, tenantID)
	if err != nil {
		return domain.SyncRun{}, err
	}
	return s.SyncFrom(ctx, tenantID, state, opt)
}

// SyncFrom is Sync from the checkpoints state, which the caller has read
// under the tenant's lease (the worker reads them with the lease, in one
// round trip: postgres.Store.SyncBegin).
func (s *Syncer) SyncFrom(ctx context.Context, tenantID string, state []domain.SyncCheckpoint, opt Options) (domain.SyncRun, error) {
	var err error
	cps := map[string]domain.SyncCheckpoint{}
	for _, cp := range state {
		cps[cp.Resource] = cp
	}
	run := domain.SyncRun{TenantID: tenantID, Kind: domain.SyncDelta, Outcome: domain.SyncRunning, StartedAt: s.now()}
	for _, res := range []string{ResourceUsers, ResourceGroups} {
		if cp := cps[res]; forcesFull(cp, opt) || cp.LinkKind == domain.LinkNone || cp.LinkKind == domain.LinkNext && cp.RoundKind == domain.SyncFull {
			run.Kind = domain.SyncFull
		}
	}
	// The run's row is written when it ends, or before the first page that
	// leaves more pages of a resource to fetch (syncResource): a run of
	// one page per resource, a small tenant's round, writes sync_runs once,
	// in one statement. A longer run shows as running while it goes, and
	// is closed as abandoned if its worker dies.
	for _, res := range []string{ResourceUsers, ResourceGroups} {
		cp := cps[res]
		cp.Resource = res
		if err = s.syncResource(ctx, tenantID, cp, opt, &run); err != nil {
			break
		}
	}
	run.Outcome = domain.SyncSucceeded
	if err != nil {
		run.Outcome, run.Error, run.ErrorCode = outcome(ctx, err)
	}
	now := s.now()
	run.FinishedAt = &now
	// Record the run even when ctx was cancelled by shutdown.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	id, ferr := s.store.SyncRunFinish(fctx, run)
	if ferr != nil && err == nil {
		err = ferr
	}
	if ferr == nil {
		run.ID = id
	}
	return run, err
}

// outcome classifies a failed run: paused (shutdown, throttling that the
// job snoozes through, the end of its slice) or failed.
func outcome(ctx context.Context, err error) (domain.SyncOutcome, string, string) {
	code := ""
	if f, ok := domain.FaultOf(err); ok {
		code = f.Code
	}
	if ctx.Err() != nil || domain.RetryAfterOf(err) > 0 || errors.Is(err, ErrSliceEnded) {
		return domain.SyncSnoozed, err.Error(), code
	}
	return domain.SyncFailed, err.Error(), code
}

// forcesFull reports whether opt forces a new full round of cp's resource:
// a forced round that already started (cp carries its job) is resumed.
func forcesFull(cp domain.SyncCheckpoint, opt Options) bool {
	return opt.FullJob != 0 && cp.FullJob != opt.FullJob
}

// syncResource walks one resource from cp to a deltaLink.
func (s *Syncer) syncResource(ctx context.Context, tenantID string, cp domain.SyncCheckpoint, opt Options, run *domain.SyncRun) error {
	var link string
	switch {
	case forcesFull(cp, opt) || cp.LinkKind == domain.LinkNone:
		cp = startFull(cp, opt.FullJob)
	case cp.LinkKind == domain.LinkDelta:
		cp.RoundKind, link = domain.SyncDelta, cp.Link
	default: // resume the round after its last committed page
		link = cp.Link
	}
	restarted := false
	// Two page buffers: while one page is applied in Postgres, the next is
	// fetched and decoded into the other, so the sync runs at the pace of
	// the slower side instead of the sum of both (measured in
	// BenchmarkFullSync100k as the ratio to a raw COPY).
	var users [2]domain.UsersPage
	var groups [2]domain.GroupsPage
	// The prefetch goroutine must not read cp, which the loop updates.
	resource := cp.Resource
	fetch := func(ctx context.Context, link string, buf int) fetched {
		var f fetched
		if resource == ResourceUsers {
			f.err = s.src.UsersDelta(ctx, tenantID, link, &users[buf])
			f.st, f.next, f.delta = users[buf].Stats, users[buf].NextLink, users[buf].DeltaLink
		} else {
			f.err = s.src.GroupsDelta(ctx, tenantID, link, &groups[buf])
			f.st, f.next, f.delta = groups[buf].Stats, groups[buf].NextLink, groups[buf].DeltaLink
		}
		return f
	}
	count := func(f fetched) {
		run.Requests += f.st.Requests
		run.ThrottledWaits += f.st.ThrottledWaits
		run.ThrottledFor += f.st.ThrottledFor.Milliseconds()
	}
	cur := 0
	f := fetch(ctx, link, cur)
	for {
		count(f)
		if f.err != nil {
			if domain.FaultKindOf(f.err) == domain.FaultResyncRequired && !restarted {
				// Facts §5.2: an expired delta token (400 syncStateNotFound)
				// or a reset (410) means a new full round; its sweep removes
				// whatever the missed changes deleted.
				restarted = true
				cp = startFull(cp, cp.FullJob)
				run.Kind = domain.SyncFull
				f = fetch(ctx, "", cur)
				continue
			}
			return f.err
		}
		c := domain.SyncCommit{Checkpoint: cp, Lease: opt.Lease, First: cp.LinkKind != domain.LinkNext}
		if f.delta != "" {
			c.Checkpoint.Link, c.Checkpoint.LinkKind = f.delta, domain.LinkDelta
			c.Sweep = cp.RoundKind == domain.SyncFull
		} else {
			c.Checkpoint.Link, c.Checkpoint.LinkKind = f.next, domain.LinkNext
		}
		// The slice ends at the first page past Until; no page is fetched
		// beyond it, so nothing is paid for twice.
		last := f.delta != "" || !opt.Until.IsZero() && !s.now().Before(opt.Until)
		var prefetch chan fetched
		pctx, cancel := context.WithCancel(ctx)
		if !last && !opt.Sequential {
			prefetch = make(chan fetched, 1)
			go func(link string, buf int) { prefetch <- fetch(pctx, link, buf) }(f.next, 1-cur)
		}
		var a domain.SyncApplied
		var err error
		if cp.Resource == ResourceUsers {
			a, err = s.store.DirectoryUsersApply(ctx, tenantID, &users[cur], c)
		} else {
			a, err = s.store.DirectoryGroupsApply(ctx, tenantID, &groups[cur], c)
		}
		if err != nil {
			cancel()
			if prefetch != nil {
				count(<-prefetch) // its requests were sent all the same
			}
			return fmt.Errorf("sync %s of tenant %s: %w", cp.Resource, tenantID, err)
		}
		run.Pages++
		run.Upserts += a.Upserts
		run.Deletes += a.Deletes
		cp = c.Checkpoint
		if f.delta != "" {
			cancel()
			return nil
		}
		if last {
			cancel()
			return ErrSliceEnded
		}
		if run.ID == 0 {
			// More pages to come: the run shows as running from now on.
			if run.ID, err = s.store.SyncRunStart(ctx, tenantID, run.Kind, run.StartedAt); err != nil {
				cancel()
				if prefetch != nil {
					count(<-prefetch)
				}
				return err
			}
		}
		if prefetch == nil {
			cancel()
			f = fetch(ctx, f.next, cur)
			continue
		}
		f = <-prefetch
		cancel()
		cur = 1 - cur
	}
}

// fetched is one fetched page's links, cost and error.
type fetched struct {
	err         error
	st          domain.RequestStats
	next, delta string
}

// startFull begins a new full round: a new round number, so every row the
// round does not see keeps an older seen_round and is swept at its end.
// fullJob is the forcing job, if any, remembered with the round.
func startFull(cp domain.SyncCheckpoint, fullJob int64) domain.SyncCheckpoint {
	cp.Round++
	cp.RoundKind = domain.SyncFull
	cp.Link, cp.LinkKind = "", domain.LinkNone
	cp.FullJob = fullJob
	return cp
}
