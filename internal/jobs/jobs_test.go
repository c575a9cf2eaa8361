package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/leaktest"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

type testBundle struct {
	srv    *entraemu.Server
	pool   *pgxpool.Pool
	store  *postgres.Store
	tokens *entra.TokenSource
	client *river.Client[pgx.Tx]
	logs   *logBuffer
}

type opts struct {
	secret      string // "" = the app's secret
	pageSize    int
	propagation time.Duration
	consentWait time.Duration
	pool        *pgxpool.Pool // share a database between two workers
	srv         *entraemu.Server
	deps        func(*jobs.Deps) // adjusts the workers' Deps last
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func setup(t *testing.T, o opts) *testBundle {
	t.Helper()
	srv := o.srv
	if srv == nil {
		ps := o.pageSize
		if ps == 0 {
			ps = 8
		}
		srv = entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: ps, ThrottleScale: 1000, PropagationDelay: o.propagation})
	}
	pool := o.pool
	if pool == nil {
		pool = pgtest.Pool(t)
	}
	store := postgres.New(pool)
	tokens, gc := jobstest.GatedClients(t, srv, o.secret, store)
	logs := &logBuffer{}
	wait := o.consentWait
	if wait == 0 {
		wait = 20 * time.Second
	}
	deps := &jobs.Deps{Store: store, Tokens: tokens, Graph: gc,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		SyncInterval: time.Hour, ConsentPropagationWait: wait}
	if o.deps != nil {
		o.deps(deps)
	}
	client := jobstest.StartWorker(t, pool, deps, 4)
	return &testBundle{srv: srv, pool: pool, store: store, tokens: tokens, client: client, logs: logs}
}

// eventually polls cond every 50 ms for up to a minute (generous for busy
// machines; nothing here asserts on time).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (b *testBundle) tenant(t *testing.T, tid string) domain.Tenant {
	t.Helper()
	tn, err := b.store.TenantGet(context.Background(), tid)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// waitJob waits, on River's job events rather than by polling, until job id
// reaches one of states, and returns its row then.
func (b *testBundle) waitJob(t *testing.T, id int64, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	// Subscribe first, then look: an event that comes between the two is
	// not missed, and a job that got there already is seen.
	events, cancel := b.client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	defer cancel()
	row, err := b.client.JobGet(context.Background(), id)
	if err != nil {
		t.Fatalf("job %d: %v", id, err)
	}
	timeout := time.After(time.Minute) // generous for busy machines; nothing here asserts on time
	// Events reach only the client that worked the job; a job another
	// client (a second worker) took is seen by reading it again.
	reread := time.NewTicker(250 * time.Millisecond)
	defer reread.Stop()
	for !slices.Contains(states, row.State) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("River closed its events while job %d was %s, waiting for %v", id, row.State, states)
			}
			if ev.Job.ID == id {
				row = ev.Job
			}
		case <-reread.C:
			if row, err = b.client.JobGet(context.Background(), id); err != nil {
				t.Fatalf("job %d: %v", id, err)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for job %d in %v (it is %s)", id, states, row.State)
		}
	}
	return row
}

// activate makes tid an active tenant and runs its first full sync.
func (b *testBundle) activate(t *testing.T, tid string) {
	t.Helper()
	pgtest.ActiveTenant(t, b.store, tid)
	b.syncNow(t, tid, rivertype.JobStateCompleted)
	if tn := b.tenant(t, tid); tn.LastSyncedAt == nil || tn.Status != domain.TenantActive {
		t.Fatalf("after first sync: %+v", tn)
	}
}

func (b *testBundle) syncNow(t *testing.T, tid string, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	res, err := b.client.Insert(context.Background(), queue.SyncTenantArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.waitJob(t, res.Job.ID, states...)
}

func TestVerifyTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.LitwareTenantID

	t.Run("through consent propagation to active and synced", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{propagation: 1500 * time.Millisecond})
		if err := b.srv.Grant(tid); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.TenantUpsertConsented(ctx, tid, "admin@litware.example", "oid"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Insert(ctx, queue.VerifyTenantArgs{TenantID: tid}, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "first sync", func() bool { return b.tenant(t, tid).LastSyncedAt != nil })
		tn := b.tenant(t, tid)
		if tn.Status != domain.TenantActive || tn.DisplayName != "Litware" || !slices.Contains(tn.Domains, "litware.example") {
			t.Errorf("verified tenant: %+v", tn)
		}
		if d := cmp.Diff(entra.RequiredRoles(), tn.GrantedRoles); d != "" {
			t.Errorf("granted roles (-want +got):\n%s", d)
		}
		jobstest.AssertCopy(t, b.srv, b.store, tid)
		c := b.srv.Counters(tid)
		if c.TokenByStatus[400] == 0 || c.TokenRequests > 8 {
			t.Errorf("token requests through propagation: %+v; want some 700016 answers and no storm", c)
		}
	})

	t.Run("missing roles", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{consentWait: time.Second})
		if err := b.srv.Grant(tid, "User.Read.All"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.TenantUpsertConsented(ctx, tid, "admin@litware.example", "oid"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Insert(ctx, queue.VerifyTenantArgs{TenantID: tid}, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a verdict", func() bool { return b.tenant(t, tid).Status != domain.TenantPending })
		tn := b.tenant(t, tid)
		if tn.Status != domain.TenantInsufficientPermissions ||
			!strings.Contains(tn.StatusReason, "GroupMember.Read.All, Organization.Read.All") || strings.Contains(tn.StatusReason, "User.Read.All") {
			t.Errorf("tenant: %s: %s", tn.Status, tn.StatusReason)
		}
		if c := b.srv.Counters(tid); c.GraphRequests != 0 || c.TokenRequests > 6 {
			t.Errorf("requests: %+v", c)
		}
	})

	t.Run("never consented", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{consentWait: time.Second})
		if _, err := b.store.TenantUpsertConsented(ctx, tid, "admin@litware.example", "oid"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Insert(ctx, queue.VerifyTenantArgs{TenantID: tid}, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a verdict", func() bool { return b.tenant(t, tid).Status != domain.TenantPending })
		tn := b.tenant(t, tid)
		if tn.Status != domain.TenantConsentRevoked || !strings.Contains(tn.StatusReason, "AADSTS700016") {
			t.Errorf("tenant: %s: %s", tn.Status, tn.StatusReason)
		}
		if c := b.srv.Counters(tid); c.TokenRequests > 6 || c.GraphRequests != 0 {
			t.Errorf("requests: %+v", c)
		}
	})
}

func TestSyncStatusOnConsentChanges(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	for _, tt := range []struct {
		name   string
		change func(*entraemu.Server) error
		want   domain.TenantStatus
		reason string
		purged bool
	}{
		{"revoked consent", func(s *entraemu.Server) error { return s.RevokeConsent(tid) }, domain.TenantConsentRevoked, "AADSTS700016", true},
		{"removed roles", func(s *entraemu.Server) error { return s.RemoveRoles(tid) }, domain.TenantInsufficientPermissions, "User.Read.All, GroupMember.Read.All, Organization.Read.All", false},
		{"disabled service principal", func(s *entraemu.Server) error { return s.DisableServicePrincipal(tid) }, domain.TenantConsentRevoked, "AADSTS7000112", true},
		{"deleted tenant", func(s *entraemu.Server) error { return s.DeleteTenant(tid) }, domain.TenantConsentRevoked, "AADSTS90002", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, opts{})
			b.activate(t, tid)
			before := b.srv.Counters(tid)
			if err := tt.change(b.srv); err != nil {
				t.Fatal(err)
			}
			// The cached token would stay valid for up to an hour; expire it.
			b.tokens.Invalidate(tid)
			b.syncNow(t, tid, rivertype.JobStateCompleted)
			tn := b.tenant(t, tid)
			if tn.Status != tt.want || !strings.Contains(tn.StatusReason, tt.reason) {
				t.Errorf("status %s (%s), want %s (%s)", tn.Status, tn.StatusReason, tt.want, tt.reason)
			}
			after := b.srv.Counters(tid)
			if tok, gr := after.TokenRequests-before.TokenRequests, after.GraphRequests-before.GraphRequests; tok > 2 || gr > 2 {
				t.Errorf("%d token and %d Graph requests for one failed sync; want at most 2 each", tok, gr)
			}
			if tt.purged {
				eventually(t, "purge", func() bool {
					c, err := b.store.DirectoryCounts(context.Background(), tid)
					return err == nil && c.Users == 0 && c.Groups == 0 && c.Memberships == 0
				})
			}
			// No further syncs: the fan-out skips the tenant.
			ids, err := b.store.TenantClaimDue(context.Background(), time.Now().Add(48*time.Hour), time.Now(), 10)
			if err != nil || slices.Contains(ids, tid) {
				t.Errorf("tenant still due for sync: %v %v", ids, err)
			}
		})
	}

	t.Run("wrong app secret", func(t *testing.T) {
		t.Parallel()
		srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 8, ThrottleScale: 1000})
		pool := pgtest.Pool(t)
		good := setup(t, opts{srv: srv, pool: pool})
		good.activate(t, tid)
		if err := good.client.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		bad := setup(t, opts{srv: srv, pool: pool, secret: "not-the-secret"})
		before := srv.Counters(tid)
		row := bad.syncNow(t, tid, rivertype.JobStateScheduled)
		after := srv.Counters(tid)
		tn := bad.tenant(t, tid)
		if tn.Status != domain.TenantActive || tn.FailureCount != 0 {
			t.Errorf("a broken app credential changed the tenant: %s (%s), %d failures", tn.Status, tn.StatusReason, tn.FailureCount)
		}
		if tok := after.TokenRequests - before.TokenRequests; tok != 1 || after.TokenByStatus[401] != 1 {
			t.Errorf("token requests %d, by status %v; want one 401", tok, after.TokenByStatus)
		}
		if n := bad.logs.count("rejects the app's own credential"); n != 1 {
			t.Errorf("the broken credential was logged %d times, want once", n)
		}
		if row.ScheduledAt.Before(time.Now().Add(time.Minute)) {
			t.Errorf("job snoozed until %s only", row.ScheduledAt)
		}
	})
}

func TestThrottlingSnoozesTheJob(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	b := setup(t, opts{})
	b.activate(t, tid)
	b.srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 1, RetryAfter: 30 * time.Second})
	row := b.syncNow(t, tid, rivertype.JobStateScheduled)
	if row.ScheduledAt.Before(time.Now().Add(20 * time.Second)) {
		t.Errorf("snoozed until %s; want about 30s ahead", row.ScheduledAt)
	}
	if row.Attempt > 1 || len(row.Errors) != 0 {
		t.Errorf("snooze used an attempt or recorded an error: attempt %d, errors %v", row.Attempt, row.Errors)
	}
	tn := b.tenant(t, tid)
	if tn.Status != domain.TenantActive || tn.FailureCount != 0 {
		t.Errorf("throttling counted as a failure: %+v", tn)
	}
	runs, err := b.store.SyncRunList(context.Background(), tid, 1)
	if err != nil || len(runs) != 1 || runs[0].Outcome != domain.SyncSnoozed {
		t.Errorf("last run: %+v %v", runs, err)
	}
	if c := b.srv.Counters(tid); c.EarlyRetries != 0 {
		t.Errorf("%d early retries", c.EarlyRetries)
	}
}

func TestFailingTenantBacksOffAndRecovers(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	b := setup(t, opts{})
	b.activate(t, tid)
	b.srv.SetFaults(tid, entraemu.Faults{ErrorRate: 1, ErrorStatus: 500})
	b.tokens.Invalidate(tid)
	for i := 1; i <= 2; i++ {
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		tn := b.tenant(t, tid)
		if tn.Status != domain.TenantFailing || tn.FailureCount != i || tn.NextSyncAt == nil ||
			tn.NextSyncAt.Before(time.Now().Add(jobs.FailureBackoff(i, time.Hour)-time.Minute)) {
			t.Errorf("after failure %d: %s, %d failures, next %v", i, tn.Status, tn.FailureCount, tn.NextSyncAt)
		}
	}
	b.srv.SetFaults(tid, entraemu.Faults{})
	b.syncNow(t, tid, rivertype.JobStateCompleted)
	if tn := b.tenant(t, tid); tn.Status != domain.TenantActive || tn.FailureCount != 0 {
		t.Errorf("after recovery: %s, %d failures", tn.Status, tn.FailureCount)
	}
	jobstest.AssertCopy(t, b.srv, b.store, tid)
}

func TestTwoWorkersShareTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 6, ThrottleScale: 1000})
	srv.SetFaults("", entraemu.Faults{Latency: 5 * time.Millisecond})
	pool := pgtest.Pool(t)
	tenants := []string{entraemu.ContosoTenantID, entraemu.FabrikamTenantID}
	st := postgres.New(pool)
	for _, tid := range tenants {
		if _, err := st.TenantUpsertConsented(ctx, tid, "admin", "oid"); err != nil {
			t.Fatal(err)
		}
		if err := st.TenantSetStatus(ctx, tid, domain.TenantActive, "test", "test"); err != nil {
			t.Fatal(err)
		}
	}
	// Both start with next_sync_at NULL: the leader's fan-out enqueues them.
	a := setup(t, opts{srv: srv, pool: pool})
	b := setup(t, opts{srv: srv, pool: pool})
	for _, tid := range tenants {
		eventually(t, "fan-out sync of "+tid, func() bool { return a.tenant(t, tid).LastSyncedAt != nil })
	}
	// More rounds, each inserted from both workers at once.
	for round := range 3 {
		// A sync still running from before the change would swallow this
		// round's inserts as duplicates; start each round from a quiet queue.
		eventually(t, "no sync queued or running", func() bool {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'sync_tenant' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
		var started time.Time
		if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&started); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.CreateUser(entraemu.FabrikamTenantID, entraemu.User{UserPrincipalName: fmt.Sprintf("r%d@fabrikam.example", round), DisplayName: "R", AccountEnabled: true}); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, c := range []*river.Client[pgx.Tx]{a.client, b.client} {
			for _, tid := range tenants {
				res, err := c.Insert(ctx, queue.SyncTenantArgs{TenantID: tid}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !res.UniqueSkippedAsDuplicate {
					ids = append(ids, res.Job.ID)
				}
			}
		}
		for _, id := range ids {
			a.waitJob(t, id, rivertype.JobStateCompleted)
		}
		// Whichever worker took it, a run that started after the change
		// completes for each tenant.
		for _, tid := range tenants {
			eventually(t, fmt.Sprintf("round %d sync of %s", round, tid), func() bool {
				var n int
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND outcome = 'succeeded' AND started_at >= $2`, tid, started).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n > 0
			})
		}
	}
	for _, tid := range tenants {
		jobstest.AssertCopy(t, a.srv, a.store, tid)
		runs, err := st.SyncRunList(ctx, tid, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) < 2 {
			t.Errorf("tenant %s: %d runs", tid, len(runs))
		}
		for i := 1; i < len(runs); i++ { // newest first
			if runs[i].FinishedAt == nil || runs[i].FinishedAt.After(runs[i-1].StartedAt) {
				t.Errorf("tenant %s: runs %d and %d overlap", tid, runs[i].ID, runs[i-1].ID)
			}
		}
	}
}

func TestShutdownSnoozesAndResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.FabrikamTenantID
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 3, ThrottleScale: 1000})
	pool := pgtest.Pool(t)
	a := setup(t, opts{srv: srv, pool: pool})
	st := a.store
	if _, err := st.TenantUpsertConsented(ctx, tid, "admin", "oid"); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantSetStatus(ctx, tid, domain.TenantActive, "test", "test"); err != nil {
		t.Fatal(err)
	}
	srv.SetFaults(tid, entraemu.Faults{Latency: 100 * time.Millisecond})
	res, err := a.client.Insert(ctx, queue.SyncTenantArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a committed page", func() bool {
		c, err := st.DirectoryCounts(ctx, tid)
		return err == nil && c.Users > 0
	})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.client.StopAndCancel(sctx); err != nil {
		t.Fatal(err)
	}
	row, err := a.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.State == rivertype.JobStateCompleted || len(row.Errors) != 0 {
		t.Fatalf("after shutdown: state %s, errors %v; want a snoozed job", row.State, row.Errors)
	}
	srv.SetFaults(tid, entraemu.Faults{})
	b := setup(t, opts{srv: srv, pool: pool})
	b.waitJob(t, res.Job.ID, rivertype.JobStateCompleted)
	jobstest.AssertCopy(t, b.srv, b.store, tid)
	runs, err := st.SyncRunList(ctx, tid, 10)
	if err != nil || len(runs) != 2 || runs[1].Outcome != domain.SyncSnoozed || runs[0].Outcome != domain.SyncSucceeded {
		t.Errorf("runs: %+v %v", runs, err)
	}
}
