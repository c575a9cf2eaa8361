package dirsync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/leaktest"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

type bundle struct {
	pool   *pgxpool.Pool
	srv    *entraemu.Server
	store  *postgres.Store
	syncer *dirsync.Syncer
	tid    string
}

type setupOpts struct {
	tenant   string
	pageSize int
	faults   *entraemu.Faults
	wrap     func(dirsync.Store) dirsync.Store
}

// setup starts an emulator and a fresh database with tenant o.tenant active.
func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	if o.tenant == "" {
		o.tenant = entraemu.FabrikamTenantID
	}
	if o.pageSize == 0 {
		o.pageSize = 7
	}
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: o.pageSize, ThrottleScale: 1000})
	if o.faults != nil {
		srv.SetFaults(o.tenant, *o.faults)
	}
	pool := pgtest.Pool(t)
	b := newBundle(t, srv, postgres.New(pool), o.tenant, o.wrap)
	b.pool = pool
	return b
}

func newBundle(t testing.TB, srv *entraemu.Server, store *postgres.Store, tid string, wrap func(dirsync.Store) dirsync.Store) *bundle {
	t.Helper()
	_, gc := jobstest.Clients(t, srv, "")
	pgtest.ActiveTenant(t, store, tid)
	syncer := dirsync.New(gc, store, nil)
	if wrap != nil {
		syncer = dirsync.New(gc, wrap(store), nil)
	}
	return &bundle{srv: srv, store: store, syncer: syncer, tid: tid}
}

func (b *bundle) sync(t testing.TB, opt dirsync.Options) domain.SyncRun {
	t.Helper()
	run, err := b.syncer.Sync(context.Background(), b.tid, opt)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if run.Outcome != domain.SyncSucceeded {
		t.Fatalf("sync outcome %s", run.Outcome)
	}
	return run
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// change applies every kind of directory change the delta rounds must carry.
func change(t *testing.T, b *bundle, round int) {
	t.Helper()
	srv, tid := b.srv, b.tid
	dir := srv.Directory(tid)
	created, err := srv.CreateUser(tid, entraemu.User{
		UserPrincipalName: fmt.Sprintf("new%d@fabrikam.example", round), DisplayName: fmt.Sprintf("New %d", round),
		GivenName: "New", Surname: fmt.Sprint(round), Mail: fmt.Sprintf("new%d@fabrikam.example", round), AccountEnabled: true,
	})
	must(t, err)
	upd := dir.Users[3+round]
	upd.DisplayName, upd.JobTitle, upd.Mail, upd.AccountEnabled = "Renamed "+upd.DisplayName, "", "", !upd.AccountEnabled
	must(t, srv.UpdateUser(tid, upd))
	must(t, srv.DeleteUser(tid, dir.Users[5+round].ID, false)) // soft
	must(t, srv.DeleteUser(tid, dir.Users[9+round].ID, true))  // hard
	g, err := srv.CreateGroup(tid, entraemu.Group{DisplayName: fmt.Sprintf("Team %d", round), Description: "new",
		Members: []string{created.ID, dir.Users[12].ID, dir.Users[13].ID}})
	must(t, err)
	_ = g
	g0 := dir.Groups[0]
	g0.Description = fmt.Sprintf("changed in round %d", round)
	must(t, srv.UpdateGroup(tid, g0))
	must(t, srv.AddMember(tid, dir.Groups[1].ID, dir.Users[14+round].ID))
	if len(dir.Groups[1].Members) > 0 {
		must(t, srv.RemoveMember(tid, dir.Groups[1].ID, dir.Groups[1].Members[0]))
	}
	if len(dir.Groups) > 3 {
		must(t, srv.DeleteGroup(tid, dir.Groups[len(dir.Groups)-1].ID, round%2 == 0))
	}
}

func TestFullThenIncrementalRounds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	run := b.sync(t, dirsync.Options{})
	if run.Kind != domain.SyncFull || run.Pages < 4 {
		t.Errorf("first run: kind %s, %d pages; want a full run over several pages", run.Kind, run.Pages)
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)

	for round := range 3 {
		change(t, b, round)
		run = b.sync(t, dirsync.Options{})
		if run.Kind != domain.SyncDelta {
			t.Errorf("round %d: kind %s, want delta", round, run.Kind)
		}
		jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	}
	// A restored user comes back with its memberships.
	dir := b.srv.Directory(b.tid)
	victim := dir.Users[1].ID
	must(t, b.srv.DeleteUser(b.tid, victim, false))
	b.sync(t, dirsync.Options{})
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	must(t, b.srv.RestoreUser(b.tid, victim))
	b.sync(t, dirsync.Options{})
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)

	// Nothing changed: one request per resource.
	run = b.sync(t, dirsync.Options{})
	if run.Requests != 2 || run.Upserts != 0 || run.Deletes != 0 {
		t.Errorf("idle round: %d requests, %d upserts, %d deletes; want 2, 0, 0", run.Requests, run.Upserts, run.Deletes)
	}
	runs, err := b.store.SyncRunList(context.Background(), b.tid, 100)
	must(t, err)
	for _, r := range runs {
		if r.Outcome != domain.SyncSucceeded || r.FinishedAt == nil {
			t.Errorf("run %d: outcome %s", r.ID, r.Outcome)
		}
	}
}

// TestRepeatedObjectsInAPage: Graph may list an object more than once
// (protocol §5.2); with the emulator repeating the first object of every page,
// members@delta included, every round still applies and leaves an exact copy.
func TestRepeatedObjectsInAPage(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{faults: &entraemu.Faults{Replay: true}})
	b.sync(t, dirsync.Options{})
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	for round := range 2 {
		change(t, b, round)
		b.sync(t, dirsync.Options{})
		jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	}
}

func TestStaleDeltaTokenFallsBackToFullRound(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		stale func(*entraemu.Server, string)
	}{
		{"expired token (400 syncStateNotFound)", func(s *entraemu.Server, tid string) { s.ExpireDeltaTokens(tid) }},
		{"forced reset (410 Gone)", func(s *entraemu.Server, tid string) { s.ForceReset(tid) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			b.sync(t, dirsync.Options{})
			// Changes the stale token would have carried, deletes included.
			change(t, b, 0)
			tt.stale(b.srv, b.tid)
			run := b.sync(t, dirsync.Options{})
			if run.Kind != domain.SyncFull {
				t.Errorf("kind %s, want full", run.Kind)
			}
			if run.Deletes == 0 {
				t.Errorf("the full round swept nothing")
			}
			jobstest.AssertCopy(t, b.srv, b.store, b.tid)
			// And back to delta rounds.
			change(t, b, 1)
			if run := b.sync(t, dirsync.Options{}); run.Kind != domain.SyncDelta {
				t.Errorf("after resync: kind %s, want delta", run.Kind)
			}
			jobstest.AssertCopy(t, b.srv, b.store, b.tid)
		})
	}
}

func TestThrottlingIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tenant: entraemu.ContosoTenantID, pageSize: 4,
		faults: &entraemu.Faults{ThrottleRate: 0.3, RetryAfter: 1e9}})
	run := b.sync(t, dirsync.Options{})
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	c := b.srv.Counters(b.tid)
	if c.EarlyRetries != 0 {
		t.Errorf("%d requests sent before their Retry-After", c.EarlyRetries)
	}
	if c.Throttled == 0 {
		t.Errorf("no request was throttled; the test proves nothing: %+v", c)
	}
	if run.ThrottledWaits != c.Throttled || run.Requests != c.GraphRequests {
		t.Errorf("run counted %d throttled waits and %d requests; emulator %d and %d",
			run.ThrottledWaits, run.Requests, c.Throttled, c.GraphRequests)
	}
}

// killer cancels the sync's context while a chosen page is being applied
// (the sync must be Sequential for "page" to be one Graph page: else the
// pages waiting for the store are applied together).
type killer struct {
	dirsync.Store
	cancel  context.CancelFunc
	page    int
	applied int
}

func (k *killer) DirectoryUsersApply(ctx context.Context, tid string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	k.applied++
	if k.applied == k.page {
		k.cancel()
	}
	return k.Store.DirectoryUsersApply(ctx, tid, p, c)
}

func (k *killer) DirectoryGroupsApply(ctx context.Context, tid string, p *domain.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	k.applied++
	if k.applied == k.page {
		k.cancel()
	}
	return k.Store.DirectoryGroupsApply(ctx, tid, p, c)
}

func TestKilledMidPageResumes(t *testing.T) {
	t.Parallel()
	// Pages 1-4 are users (30 users, 7 per page), page 6 is groups.
	for _, page := range []int{3, 6} {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			k := &killer{cancel: cancel, page: page}
			b := setup(t, setupOpts{wrap: func(s dirsync.Store) dirsync.Store { k.Store = s; return k }})
			run, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{Sequential: true})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("killed sync: %v, want context.Canceled", err)
			}
			if run.Outcome != domain.SyncSnoozed || run.Pages != page-1 {
				t.Errorf("killed run: outcome %s after %d pages; want snoozed after %d", run.Outcome, run.Pages, page-1)
			}
			counts, err := b.store.DirectoryCounts(context.Background(), b.tid)
			must(t, err)
			if page == 3 && counts.Users != 2*7 {
				t.Errorf("after the kill %d users are stored, want the 14 of the two committed pages", counts.Users)
			}
			// The first round of an empty copy writes in bulk (COPY), and
			// goes on doing so when resumed.
			if !roundBulk(t, b, dirsync.ResourceUsers) {
				t.Error("the killed first round does not write in bulk")
			}
			k.page = -1
			// Sequential again: otherwise the groups' two pages may be
			// fetched before the first is applied and written as one page,
			// a whole first round, which is inserted rather than COPYed
			// (internal/postgres/directory_insert.go) and leaves no bulk
			// round to see; how soon the fetcher is ahead is timing.
			run = b.sync(t, dirsync.Options{Sequential: true})
			if run.Kind != domain.SyncFull {
				t.Errorf("resumed run kind %s, want full (the round goes on)", run.Kind)
			}
			if !roundBulk(t, b, dirsync.ResourceUsers) || !roundBulk(t, b, dirsync.ResourceGroups) {
				t.Error("the resumed first round does not write in bulk")
			}
			jobstest.AssertCopy(t, b.srv, b.store, b.tid)
			// The killed page's events went with it; none is written twice.
			if diff := cmp.Diff(creations(b.srv.Directory(b.tid)), eventKeys(t, directoryEvents(t, b))); diff != "" {
				t.Errorf("events after the resumed round (-want +got):\n%s", diff)
			}
		})
	}
}

// roundBulk reads whether the current round of resource writes its pages
// with COPY (internal/postgres/directory_bulk.go).
func roundBulk(t *testing.T, b *bundle, resource string) bool {
	t.Helper()
	var bulk bool
	if err := b.pool.QueryRow(context.Background(), `SELECT bulk FROM sync_state WHERE tenant_id = $1 AND resource = $2`,
		b.tid, resource).Scan(&bulk); err != nil {
		t.Fatal(err)
	}
	return bulk
}

func TestForcedFullRound(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tenant: entraemu.ContosoTenantID, pageSize: 20})
	b.sync(t, dirsync.Options{})
	run := b.sync(t, dirsync.Options{FullJob: 1})
	if run.Kind != domain.SyncFull || run.Deletes != 0 {
		t.Errorf("forced full: kind %s, %d deletes", run.Kind, run.Deletes)
	}
	if roundBulk(t, b, dirsync.ResourceUsers) || roundBulk(t, b, dirsync.ResourceGroups) {
		t.Error("a full round over a copy with rows writes in bulk")
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	// A later forced round (another job) is a new full round again.
	if run := b.sync(t, dirsync.Options{FullJob: 2}); run.Kind != domain.SyncFull {
		t.Errorf("second forced full: kind %s", run.Kind)
	}
}

// TestForcedFullRoundResumes: a forced full sync that is interrupted (a
// snooze, a retry, a killed worker) resumes its own round when its job runs
// again, instead of starting over; the old behaviour restarted every time,
// so a throttled large tenant never finished its first sync.
func TestForcedFullRoundResumes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &killer{cancel: cancel, page: -1}
	b := setup(t, setupOpts{wrap: func(s dirsync.Store) dirsync.Store { k.Store = s; return k }})
	b.sync(t, dirsync.Options{}) // a first round, so that a delta link is saved
	k.applied, k.page = 0, 3
	if _, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{FullJob: 7, Sequential: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed forced sync: %v, want context.Canceled", err)
	}
	k.page = -1
	k.applied = 0
	run := b.sync(t, dirsync.Options{FullJob: 7})
	// 30 users at 7 a page are 5 pages, then the groups' pages; the killed
	// attempt committed 2 users pages, so the resumed one must not apply them again.
	whole := b.sync(t, dirsync.Options{FullJob: 8})
	if run.Kind != domain.SyncFull || run.Pages != whole.Pages-2 {
		t.Errorf("resumed forced round applied %d pages (kind %s); a whole round is %d pages, 2 were committed before",
			run.Pages, run.Kind, whole.Pages)
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
}

// TestSliceEnds: with Until passed, each run commits one page and ends with
// ErrSliceEnded; run after run, the round finishes from its checkpoints
// and the copy is exact.
func TestSliceEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	upserts, runs := 0, 0
	for {
		run, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{Until: time.Unix(1, 0)})
		runs++
		upserts += run.Upserts
		if err == nil {
			break
		}
		// One page, or two where users ended with their deltaLink and the
		// groups' first page ended the slice.
		if !errors.Is(err, dirsync.ErrSliceEnded) || run.Outcome != domain.SyncSnoozed || run.Pages < 1 || run.Pages > 2 {
			t.Fatalf("slice %d: %v, outcome %s, %d pages; want ErrSliceEnded after one page", runs, err, run.Outcome, run.Pages)
		}
		if runs > 100 {
			t.Fatal("the slices never finish the round")
		}
	}
	// Every row was written once: no slice applied a page of another again
	// (a whole round upserts every row once too). The whole round is
	// sequential, so it too writes each page alone: a group mentioned on two
	// pages (its members split between them) counts once per page, where
	// pages that waited for the store and went as one would count it once.
	whole := b.sync(t, dirsync.Options{FullJob: 1, Sequential: true})
	if runs < 3 || upserts != whole.Upserts {
		t.Errorf("%d slices upserted %d rows; a whole round upserts %d", runs, upserts, whole.Upserts)
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
}

// leaseTakenByAnother takes b's tenant's lease for held, and returns it
// with the lease of another job, which does not hold it.
func leaseTakenByAnother(t *testing.T, b *bundle) (held, other domain.SyncLease) {
	t.Helper()
	held = domain.SyncLease{Owner: "00000000-0000-4000-8000-000000000001", TTL: time.Minute}
	taken, _, err := b.store.SyncLeaseTake(context.Background(), b.tid, held)
	must(t, err)
	if !taken {
		t.Fatal("lease not taken on a free tenant")
	}
	return held, domain.SyncLease{Owner: "00000000-0000-4000-8000-000000000002", TTL: time.Minute}
}

// assertNothingWritten fails when b's tenant has directory rows or events.
func assertNothingWritten(t *testing.T, b *bundle, what string) {
	t.Helper()
	counts, err := b.store.DirectoryCounts(context.Background(), b.tid)
	must(t, err)
	if counts.Users != 0 || counts.Groups != 0 {
		t.Errorf("%s wrote %+v", what, counts)
	}
	if evs := directoryEvents(t, b); len(evs) != 0 {
		t.Errorf("%s wrote events %v", what, eventKeys(t, evs))
	}
}

// TestLeaseLost: a sync whose lease is held by another commits nothing.
func TestLeaseLost(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	held, other := leaseTakenByAnother(t, b)
	_, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{Lease: other})
	if !errors.Is(err, domain.ErrSyncLeaseLost) {
		t.Fatalf("sync without the lease: %v, want ErrSyncLeaseLost", err)
	}
	assertNothingWritten(t, b, "a sync without the lease")
	if _, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{Lease: held}); err != nil {
		t.Fatalf("sync with the lease: %v", err)
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
}
