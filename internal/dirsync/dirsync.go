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
	// SyncRunEnd is SyncRunFinish for a successful run that also ends the
	// round (Options.End), with the run's held pages (the only page of a
	// resource's round) committed first, in the same transaction; it
	// returns what they applied. domain.ErrHeldPagesRefused (the store
	// would not take them so) and domain.ErrSyncLeaseLost mean nothing was
	// written.
	SyncRunEnd(ctx context.Context, run domain.SyncRun, end domain.SyncEnd, held []domain.SyncPage) (int64, domain.SyncApplied, error)
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
	// Until, when set, ends the run with ErrSliceEnded once the pages
	// fetched until then are committed (no page is fetched past it): a long
	// sync is done as a chain of bounded jobs, each resuming from the
	// checkpoint.
	Until time.Time
	// Lease is the tenant's sync lease: every page is committed only while
	// it is held, and extends it.
	Lease domain.SyncLease
	// End, when set, also ends the round when the run succeeds, in the
	// round trip that records the run (Store.SyncRunEnd): a nil error then
	// means the round's end is recorded too.
	End *domain.SyncEnd
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
	// is closed as abandoned if its worker dies. A resource whose round is
	// one page, as every resource of a small tenant's is, has that page
	// held to commit with the run's end (Options.End): one round trip for
	// the pages, the run and the round's end (Store.SyncRunEnd).
	var held []domain.SyncPage
	for _, res := range []string{ResourceUsers, ResourceGroups} {
		cp := cps[res]
		cp.Resource = res
		if err = s.syncResource(ctx, tenantID, cp, opt, &run, &held); err != nil {
			break
		}
	}
	// Record the run even when ctx was cancelled by shutdown.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil && opt.End != nil && len(held) > 0 {
		ended, ferr := s.endWith(fctx, run, *opt.End, held)
		if !errors.Is(ferr, domain.ErrHeldPagesRefused) && !errors.Is(ferr, domain.ErrSyncLeaseLost) {
			return ended, ferr
		}
		// Nothing was written: the pages go one by one, and a lost lease
		// fails the first, as it would have.
	}
	// The held pages, applied one by one before the run's end: a later
	// resource failed (they are still worth keeping), or the store would
	// not take them with the end. A page of theirs that fails came before
	// any later failure, so its error is the run's.
	if aerr := s.applyHeld(ctx, tenantID, &held, &run); aerr != nil {
		err = aerr
	}
	run.Outcome = domain.SyncSucceeded
	if err != nil {
		run.Outcome, run.Error, run.ErrorCode = outcome(ctx, err)
	}
	now := s.now()
	run.FinishedAt = &now
	var id int64
	var ferr error
	if err == nil && opt.End != nil {
		id, _, ferr = s.store.SyncRunEnd(fctx, run, *opt.End, nil)
	} else {
		id, ferr = s.store.SyncRunFinish(fctx, run)
	}
	if ferr != nil && err == nil {
		err = ferr
	}
	if ferr == nil {
		run.ID = id
	}
	return run, err
}

// endWith records run as succeeded and ends its round (Store.SyncRunEnd)
// with the held pages, committed in the same transaction.
func (s *Syncer) endWith(ctx context.Context, run domain.SyncRun, end domain.SyncEnd, held []domain.SyncPage) (domain.SyncRun, error) {
	run.Outcome = domain.SyncSucceeded
	now := s.now()
	run.FinishedAt = &now
	run.Pages += len(held)
	id, a, err := s.store.SyncRunEnd(ctx, run, end, held)
	if err != nil {
		return run, err
	}
	run.ID, run.Upserts, run.Deletes = id, run.Upserts+a.Upserts, run.Deletes+a.Deletes
	return run, nil
}

// applyHeld applies the held pages one by one, in order, and forgets them.
func (s *Syncer) applyHeld(ctx context.Context, tenantID string, held *[]domain.SyncPage, run *domain.SyncRun) error {
	for len(*held) > 0 {
		if err := s.apply(ctx, tenantID, (*held)[0], run); err != nil {
			return err
		}
		run.Pages++
		*held = (*held)[1:]
	}
	return nil
}

// apply applies page p with its commit, adding what it wrote to run.
func (s *Syncer) apply(ctx context.Context, tenantID string, p domain.SyncPage, run *domain.SyncRun) error {
	var a domain.SyncApplied
	var err error
	resource := p.Commit.Checkpoint.Resource
	if p.Users != nil {
		a, err = s.store.DirectoryUsersApply(ctx, tenantID, p.Users, p.Commit)
	} else {
		a, err = s.store.DirectoryGroupsApply(ctx, tenantID, p.Groups, p.Commit)
	}
	if err != nil {
		return fmt.Errorf("sync %s of tenant %s: %w", resource, tenantID, err)
	}
	run.Upserts += a.Upserts
	run.Deletes += a.Deletes
	return nil
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
// A page that is the whole of its round is held (appended to held) when
// the run ends its round (opt.End), instead of applied; a page applied on
// its own first applies the held ones, so pages commit in the order they
// came (a user's creation before a group's membership of it).
func (s *Syncer) syncResource(ctx context.Context, tenantID string, cp domain.SyncCheckpoint, opt Options, run *domain.SyncRun, held *[]domain.SyncPage) error {
	var link string
	switch {
	case forcesFull(cp, opt) || cp.LinkKind == domain.LinkNone:
		cp = startFull(cp, opt.FullJob)
	case cp.LinkKind == domain.LinkDelta:
		cp.RoundKind, link = domain.SyncDelta, cp.Link
	default: // resume the round after its last committed page
		link = cp.Link
	}
	count := func(p *page) {
		run.Requests += p.st.Requests
		run.ThrottledWaits += p.st.ThrottledWaits
		run.ThrottledFor += p.st.ThrottledFor.Milliseconds()
	}
	// While the store applies pages, the fetcher fetches and decodes the
	// next ones, so the sync runs at the pace of the slower side instead of
	// the sum of both (BenchmarkFullSync100k's speedup-vs-sequential).
	f := s.fetchPages(ctx, tenantID, cp.Resource, link, opt)
	defer func() { f.stop(count) }()
	restarted := false
	var failed *page // a failed fetch, held until the pages before it are applied
	for {
		p := failed
		failed = nil
		if p == nil {
			if p = <-f.pages; p == nil {
				return ctx.Err() // the fetcher stopped before fetching
			}
			count(p)
		}
		if p.err != nil {
			if domain.FaultKindOf(p.err) == domain.FaultResyncRequired && !restarted {
				// Facts §5.2: an expired delta token (400 syncStateNotFound)
				// or a reset (410) means a new full round; its sweep removes
				// whatever the missed changes deleted.
				restarted = true
				cp = startFull(cp, cp.FullJob)
				run.Kind = domain.SyncFull
				f.stop(count)
				f = s.fetchPages(ctx, tenantID, cp.Resource, "", opt)
				continue
			}
			return p.err
		}
		// The pages fetched meanwhile go with this one, up to a failed one.
		pages := 1
		for pages <= aheadPages && !p.last && failed == nil {
			q := f.ready()
			if q == nil {
				break
			}
			count(q)
			if q.err != nil {
				failed = q
				break
			}
			p.merge(q)
			pages++
			f.free <- q
		}
		c := domain.SyncCommit{Checkpoint: cp, Lease: opt.Lease, First: cp.LinkKind != domain.LinkNext}
		if d := p.delta(); d != "" {
			c.Checkpoint.Link, c.Checkpoint.LinkKind = d, domain.LinkDelta
			c.Sweep = cp.RoundKind == domain.SyncFull
		} else {
			c.Checkpoint.Link, c.Checkpoint.LinkKind = p.next(), domain.LinkNext
		}
		sp := domain.SyncPage{Commit: c}
		if cp.Resource == ResourceUsers {
			sp.Users = &p.users
		} else {
			sp.Groups = &p.groups
		}
		if opt.End != nil && c.First && p.delta() != "" {
			// The round's only page (one Graph page: it carries the
			// deltaLink): held, to commit with the run's end
			// (Store.SyncRunEnd). The fetcher is done with its buffer.
			*held = append(*held, sp)
			return nil
		}
		// Pages are committed in the order they came: the held ones first.
		if err := s.applyHeld(ctx, tenantID, held, run); err != nil {
			return err
		}
		if err := s.apply(ctx, tenantID, sp, run); err != nil {
			return err
		}
		run.Pages += pages
		cp = c.Checkpoint
		if p.delta() != "" {
			return nil
		}
		if p.last {
			return ErrSliceEnded
		}
		if run.ID == 0 {
			// More pages to come: the run shows as running from now on.
			id, err := s.store.SyncRunStart(ctx, tenantID, run.Kind, run.StartedAt)
			if err != nil {
				return err
			}
			run.ID = id
		}
		f.free <- p
	}
}

// aheadPages is how many fetched pages may wait for the store while it
// applies the ones before them. The pages waiting when it is free are
// applied together, as one page (page.merge): when Postgres is the slower
// side, as in the first sync of a large tenant from a fast Graph, a commit
// grows from one Graph page to up to aheadPages+1 of them, and one COPY of
// several thousand rows costs less per row than several COPYs of a
// thousand each (BenchmarkFullSync100k). When Graph is the slower side,
// each page is applied as it comes. It also bounds a sync's memory:
// aheadPages+2 page buffers, the one being written holding the rows of up
// to aheadPages+1 pages.
const aheadPages = 8

// page is one fetched Graph page of users or groups, or the error that
// ended the fetching.
type page struct {
	users  domain.UsersPage
	groups domain.GroupsPage
	err    error
	st     domain.RequestStats
	// last: nothing is fetched after this page (it failed, carries the
	// deltaLink, or the slice's time was up when it came).
	last bool
}

func (p *page) next() string  { return p.users.NextLink + p.groups.NextLink }
func (p *page) delta() string { return p.users.DeltaLink + p.groups.DeltaLink }

// merge appends the next page q to p (mergeUsers, mergeGroups).
func (p *page) merge(q *page) {
	mergeUsers(&p.users, &q.users)
	mergeGroups(&p.groups, &q.groups)
	p.last = q.last
}

// fetcher fetches one resource's pages in order into buffers it takes
// from free; they come out of pages, which is closed after the last one.
type fetcher struct {
	pages  chan *page
	free   chan *page
	cancel context.CancelFunc
}

// fetchPages starts fetching resource from link. A sequential sync has one
// buffer: a page is fetched only once the one before it is applied.
func (s *Syncer) fetchPages(ctx context.Context, tenantID, resource, link string, opt Options) *fetcher {
	n := aheadPages + 2
	if opt.Sequential {
		n = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &fetcher{pages: make(chan *page, n), free: make(chan *page, n), cancel: cancel}
	go func() {
		defer close(f.pages)
		made := 0 // buffers are made as needed: most syncs need one
		for {
			var p *page
			select {
			case p = <-f.free:
			default:
				if made < n {
					made++
					p = &page{}
					break
				}
				select {
				case p = <-f.free:
				case <-ctx.Done():
					return
				}
			}
			if resource == ResourceUsers {
				p.err = s.src.UsersDelta(ctx, tenantID, link, &p.users)
				p.st = p.users.Stats
			} else {
				p.err = s.src.GroupsDelta(ctx, tenantID, link, &p.groups)
				p.st = p.groups.Stats
			}
			// The slice ends at the first page fetched past Until; no page
			// is fetched beyond it, so nothing is paid for twice.
			p.last = p.err != nil || p.delta() != "" || !opt.Until.IsZero() && !s.now().Before(opt.Until)
			f.pages <- p // never blocks: it has room for every buffer
			if p.last {
				return
			}
			link = p.next()
		}
	}()
	return f
}

// ready returns the next fetched page if there is one already, else nil.
func (f *fetcher) ready() *page {
	select {
	case p := <-f.pages:
		return p
	default:
		return nil
	}
}

// stop ends the fetching and hands each page fetched meanwhile to seen:
// its requests were sent all the same.
func (f *fetcher) stop(seen func(*page)) {
	f.cancel()
	for p := range f.pages {
		seen(p)
	}
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
