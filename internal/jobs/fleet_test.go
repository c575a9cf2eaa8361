package jobs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// fleetSeed is SmallSeed plus n generated, consented customer tenants.
func fleetSeed(n, users int) (*entraemu.Seed, []string) {
	s := entraemu.SmallSeed()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", 0xf1ee7000+i, i+1)
		s.Tenants = append(s.Tenants, entraemu.Tenant{
			ID: ids[i], DisplayName: fmt.Sprintf("Fleet %d", i), Domains: []string{fmt.Sprintf("fleet%d.example", i)},
			Generate:  &entraemu.Generate{Users: users, Groups: 2, MembersPerGroup: 3, Seed: int64(i + 1)},
			Consented: true,
		})
	}
	return s, ids
}

// TestDueTenantsOnASmallPool: more due tenants than pool connections, more
// jobs at once than connections. The old per-sync advisory lock held a pooled
// connection for the whole sync and then waited for another: with pgx's
// default pool on two cores (4 connections) and 8 jobs at once, 20 due
// tenants deadlocked the worker and none synced.
func TestDueTenantsOnASmallPool(t *testing.T) {
	t.Parallel()
	seed, ids := fleetSeed(20, 5)
	srv := entraemu.StartTest(t, entraemu.Config{Seed: seed, DeltaPageSize: 4, ThrottleScale: 1000})
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool)
	for _, id := range ids {
		pgtest.ActiveTenant(t, store, id)
	}
	tokens, gc := jobstest.Clients(t, srv, "")
	deps := &jobs.Deps{Store: store, Tokens: tokens, Graph: gc, SyncInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	jobstest.StartWorker(t, pool, deps, 8)
	b := &testBundle{srv: srv, pool: pool, store: store}
	eventually(t, "every tenant synced", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM tenants WHERE last_synced_at IS NOT NULL`).Scan(&n)
		return err == nil && n == len(ids)
	})
	for _, id := range ids[:5] {
		jobstest.AssertCopy(t, b.srv, b.store, id)
	}
}

// TestDeadWorkersSyncIsTakenOver: a worker died mid-sync, leaving its job
// running, its run running and its lease held. Within RescueAfter River
// hands the job to a live worker, which waits out the lease, closes the
// dead run as abandoned and finishes the tenant's round from the last
// committed page. The old worker left such a tenant alone for about 7 hours
// and its run running forever.
func TestDeadWorkersSyncIsTakenOver(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 8, ThrottleScale: 1000})
	pool := pgtest.Pool(t)
	store := postgres.New(pool)
	ctx := context.Background()
	pgtest.ActiveTenant(t, store, tid)
	// The dead worker's traces: its lease (lapsing soon), its run, its job.
	dead := domain.SyncLease{Owner: "00000000-0000-4000-8000-00000000dead", TTL: 2 * time.Second}
	if taken, _, err := store.SyncLeaseTake(ctx, tid, dead); err != nil || !taken {
		t.Fatalf("dead lease: %v %v", taken, err)
	}
	runID, err := store.SyncRunStart(ctx, tid, domain.SyncFull, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inserter, err := queue.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	res, err := inserter.Insert(ctx, queue.SyncTenantArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now(),
		attempted_by = '{dead-worker}' WHERE id = $1`, res.Job.ID); err != nil {
		t.Fatal(err)
	}
	// While the dead job holds the unique slot, a new request is a duplicate.
	if again, err := inserter.Insert(ctx, queue.SyncTenantArgs{TenantID: tid}, nil); err != nil || !again.UniqueSkippedAsDuplicate {
		t.Fatalf("second insert: %+v %v; want a duplicate of the running job", again, err)
	}

	tokens, gc := jobstest.Clients(t, srv, "")
	deps := &jobs.Deps{Store: store, Tokens: tokens, Graph: gc, SyncInterval: time.Hour,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		SyncLease: 2 * time.Second, RescueAfter: 4 * time.Second, SyncSlice: time.Second}
	client, err := jobs.NewWorkerClient(pool, deps, jobs.ClientConfig{Concurrency: 2, Tune: func(c *river.Config) {
		c.FetchCooldown = 10 * time.Millisecond
		c.FetchPollInterval = 50 * time.Millisecond
		c.Logger = slog.New(slog.DiscardHandler)
		c.RescueStuckJobsAfter = 4 * time.Second
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.StopAndCancel(sctx)
	})
	b := &testBundle{srv: srv, pool: pool, store: store, client: client}
	b.waitJob(t, res.Job.ID, rivertype.JobStateCompleted)
	jobstest.AssertCopy(t, b.srv, b.store, tid)
	runs, err := store.SyncRunList(ctx, tid, 10)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[int64]domain.SyncOutcome{}
	for _, r := range runs {
		outcomes[r.ID] = r.Outcome
		if r.Outcome == domain.SyncRunning {
			t.Errorf("run %d still running", r.ID)
		}
	}
	if outcomes[runID] != domain.SyncAbandoned {
		t.Errorf("the dead worker's run ended %q, want abandoned", outcomes[runID])
	}
	if tn := b.tenant(t, tid); tn.LastSyncedAt == nil {
		t.Error("the tenant was not synced after the rescue")
	}
}
