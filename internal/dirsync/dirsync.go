// Package dirsync keeps one tenant's directory copy current: it walks
// users/delta and groups/delta page by page, applies each page with its
// checkpoint in one store transaction, falls back to a full round when a
// delta or skip token is stale, and sweeps what a full round did not see.
//
// It declares the small interfaces it needs (Source, Store) and imports no
// concrete store or Graph client; internal/jobs wires them.
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

// Link kinds of a checkpoint.
const (
	LinkNone  = ""
	LinkNext  = "next"  // resume the round from this page
	LinkDelta = "delta" // the round finished; the next round starts here
)

// Stats count what one Graph call cost.
type Stats struct {
	Requests       int
	ThrottledWaits int
	ThrottledFor   time.Duration
}

// UsersPage is one users/delta page (Users and Removed disjoint).
type UsersPage struct {
	Users     []domain.DirectoryUser
	Removed   []string
	NextLink  string
	DeltaLink string
	Stats     Stats
}

// GroupsPage is one groups/delta page with its members@delta.
type GroupsPage struct {
	Groups         []domain.Group
	Removed        []string
	Members        []domain.Membership
	MembersRemoved []domain.Membership
	NextLink       string
	DeltaLink      string
	Stats          Stats
}

// Source reads delta pages; link "" starts a full round. Errors that mean
// "start a full round" have a ResyncRequired() bool method returning true.
type Source interface {
	UsersDelta(ctx context.Context, tenantID, link string, p *UsersPage) error
	GroupsDelta(ctx context.Context, tenantID, link string, p *GroupsPage) error
}

// Checkpoint is where one resource's sync stands.
type Checkpoint struct {
	Resource  string
	Link      string
	LinkKind  string
	Round     int64
	RoundKind domain.SyncKind
}

// Applied counts the rows one page changed.
type Applied struct {
	Upserts int
	Deletes int
}

// Store persists pages atomically with their checkpoint, and sync runs.
type Store interface {
	SyncState(ctx context.Context, tenantID string) ([]Checkpoint, error)
	// ApplyUsers and ApplyGroups write one page and cp in one transaction;
	// with sweep they also delete rows whose seen_round < cp.Round.
	ApplyUsers(ctx context.Context, tenantID string, p *UsersPage, cp Checkpoint, sweep bool) (Applied, error)
	ApplyGroups(ctx context.Context, tenantID string, p *GroupsPage, cp Checkpoint, sweep bool) (Applied, error)
	SyncRunStart(ctx context.Context, tenantID string, kind domain.SyncKind) (int64, error)
	SyncRunFinish(ctx context.Context, run domain.SyncRun) error
}

// Syncer syncs tenants. It is safe for concurrent use on different tenants;
// callers make sure one tenant is synced by one Syncer call at a time.
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
	// Full starts full rounds even where a deltaLink is saved.
	Full bool
}

// Sync runs one sync of tenantID: users, then groups, each from its
// checkpoint to a new deltaLink. The run is recorded in sync_runs whatever
// happens; the returned run carries its counts. A failed page changes
// nothing, and the next Sync resumes after the last committed page.
func (s *Syncer) Sync(ctx context.Context, tenantID string, opt Options) (domain.SyncRun, error) {
	state, err := s.store.SyncState(ctx, tenantID)
	if err != nil {
		return domain.SyncRun{}, err
	}
	cps := map[string]Checkpoint{}
	for _, cp := range state {
		cps[cp.Resource] = cp
	}
	run := domain.SyncRun{TenantID: tenantID, Kind: domain.SyncDelta, Outcome: domain.SyncRunning, StartedAt: s.now()}
	for _, res := range []string{ResourceUsers, ResourceGroups} {
		if cp := cps[res]; opt.Full || cp.LinkKind == LinkNone || cp.LinkKind == LinkNext && cp.RoundKind == domain.SyncFull {
			run.Kind = domain.SyncFull
		}
	}
	if run.ID, err = s.store.SyncRunStart(ctx, tenantID, run.Kind); err != nil {
		return run, err
	}
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
	if ferr := s.store.SyncRunFinish(fctx, run); ferr != nil && err == nil {
		err = ferr
	}
	return run, err
}

// outcome classifies a failed run: paused (shutdown, or throttling that the
// job snoozes through) or failed.
func outcome(ctx context.Context, err error) (domain.SyncOutcome, string, string) {
	var code interface{ ErrorCode() string }
	c := ""
	if errors.As(err, &code) {
		c = code.ErrorCode()
	} else {
		var tok interface{ Code() string }
		if errors.As(err, &tok) {
			c = tok.Code()
		}
	}
	if ctx.Err() != nil || RetryAfter(err) > 0 {
		return domain.SyncSnoozed, err.Error(), c
	}
	return domain.SyncFailed, err.Error(), c
}

// RetryAfter is how long err asks to wait before retrying (Graph or Entra
// throttling), or 0.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfterDuration() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfterDuration()
	}
	return 0
}

func resyncRequired(err error) bool {
	var rr interface{ ResyncRequired() bool }
	return errors.As(err, &rr) && rr.ResyncRequired()
}

// syncResource walks one resource from cp to a deltaLink.
func (s *Syncer) syncResource(ctx context.Context, tenantID string, cp Checkpoint, opt Options, run *domain.SyncRun) error {
	var link string
	switch {
	case opt.Full || cp.LinkKind == LinkNone:
		cp = startFull(cp)
	case cp.LinkKind == LinkDelta:
		cp.RoundKind, link = domain.SyncDelta, cp.Link
	default: // resume the round after its last committed page
		link = cp.Link
	}
	restarted := false
	// Two page buffers: while one page is applied in Postgres, the next is
	// fetched and decoded into the other, so the sync runs at the pace of
	// the slower side instead of the sum of both (measured in
	// BenchmarkFullSync100k as the ratio to a raw COPY).
	var users [2]UsersPage
	var groups [2]GroupsPage
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
			if resyncRequired(f.err) && !restarted {
				// Facts §5.2: an expired delta token (400 syncStateNotFound)
				// or a reset (410) means a new full round; its sweep removes
				// whatever the missed changes deleted.
				restarted = true
				cp = startFull(cp)
				run.Kind = domain.SyncFull
				f = fetch(ctx, "", cur)
				continue
			}
			return f.err
		}
		next2 := cp
		sweep := false
		if f.delta != "" {
			next2.Link, next2.LinkKind = f.delta, LinkDelta
			sweep = cp.RoundKind == domain.SyncFull
		} else {
			next2.Link, next2.LinkKind = f.next, LinkNext
		}
		var prefetch chan fetched
		pctx, cancel := context.WithCancel(ctx)
		if f.delta == "" && !opt.Sequential {
			prefetch = make(chan fetched, 1)
			go func(link string, buf int) { prefetch <- fetch(pctx, link, buf) }(f.next, 1-cur)
		}
		var a Applied
		var err error
		if cp.Resource == ResourceUsers {
			a, err = s.store.ApplyUsers(ctx, tenantID, &users[cur], next2, sweep)
		} else {
			a, err = s.store.ApplyGroups(ctx, tenantID, &groups[cur], next2, sweep)
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
		cp = next2
		if f.delta != "" {
			cancel()
			return nil
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
	st          Stats
	next, delta string
}

// startFull begins a new full round: a new round number, so every row the
// round does not see keeps an older seen_round and is swept at its end.
func startFull(cp Checkpoint) Checkpoint {
	cp.Round++
	cp.RoundKind = domain.SyncFull
	cp.Link, cp.LinkKind = "", LinkNone
	return cp
}
