package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestSyncRunHoursShards: runs written from many connections at once land
// in several shards of sync_run_hours (migrations/00098), which add up to
// the runs; migrating down merges the shards into one row per hour and
// outcome, and up again keeps the sums.
func TestSyncRunHoursShards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, m := migrated(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	const n = 24
	errs := make(chan error, n)
	for i := range n {
		go func() {
			run := domain.SyncRun{TenantID: tid, Kind: domain.SyncDelta, Outcome: domain.SyncSucceeded, StartedAt: time.Now()}
			if i%3 == 0 {
				run.Outcome, run.ErrorCode = domain.SyncSnoozed, "TooManyRequests"
			}
			_, err := st.SyncRunFinish(ctx, run)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	const sums = `SELECT outcome || '/' || k, sum(v) FROM (
	SELECT outcome, 'runs' AS k, runs AS v FROM sync_run_hours
	UNION ALL SELECT outcome, 'throttled', throttled FROM sync_run_hours) AS h GROUP BY 1 HAVING sum(v) <> 0`
	want := map[string]int{"succeeded/runs": 16, "snoozed/runs": 8, "snoozed/throttled": 8}
	if d := cmp.Diff(want, counted(t, pool, sums)); d != "" {
		t.Fatalf("sync_run_hours (-want +got):\n%s", d)
	}
	// Two connections whose backends fall in different shards each write
	// a run: each adds to its own shard's row.
	shardOf := map[int]*pgx.Conn{}
	for len(shardOf) < 2 {
		c, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var shard int
		if err := c.QueryRow(ctx, `SELECT pg_backend_pid() % 16`).Scan(&shard); err != nil {
			t.Fatal(err)
		}
		shardOf[shard] = c
	}
	for _, c := range shardOf {
		if _, err := c.Exec(ctx, `INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, outcome)
			VALUES ($1, 'delta', now(), now(), 'succeeded')`, tid); err != nil {
			t.Fatal(err)
		}
	}
	want["succeeded/runs"] += 2
	var shards int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT shard) FROM sync_run_hours`).Scan(&shards); err != nil {
		t.Fatal(err)
	}
	if shards < 2 {
		t.Errorf("runs written from backends of %d shards landed in %d shard(s)", len(shardOf), shards)
	}
	if d := cmp.Diff(want, counted(t, pool, sums)); d != "" {
		t.Fatalf("sync_run_hours after the two shards (-want +got):\n%s", d)
	}
	var rows int

	if err := m.DownTo(ctx, 97); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_run_hours`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("after down: %d counter rows (%v), want one per outcome", rows, err)
	}
	if d := cmp.Diff(want, counted(t, pool, sums)); d != "" {
		t.Errorf("after down (-want +got):\n%s", d)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SyncRunFinish(ctx, domain.SyncRun{TenantID: tid, Kind: domain.SyncDelta, Outcome: domain.SyncSucceeded, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	want["succeeded/runs"]++
	if d := cmp.Diff(want, counted(t, pool, sums)); d != "" {
		t.Errorf("after up (-want +got):\n%s", d)
	}
}

// TestSyncRunEnd: a successful run's record and its round's end commit in
// one call: the run, the tenant's last and next sync, its lease released;
// a failing tenant becomes active again, with its event.
func TestSyncRunEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	for _, failing := range []bool{false, true} {
		tid := uuid.NewString()
		pgtest.ActiveTenant(t, st, tid)
		if failing {
			if _, err := st.TenantSyncFailed(ctx, tid, "Graph said no", func(int) time.Time { return time.Now() }); err != nil {
				t.Fatal(err)
			}
		}
		lease := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}
		if taken, _, err := st.SyncLeaseTake(ctx, tid, lease); err != nil || !taken {
			t.Fatalf("lease: %v, %v", taken, err)
		}
		run := domain.SyncRun{TenantID: tid, Kind: domain.SyncFull, Outcome: domain.SyncSucceeded, StartedAt: time.Now(), Pages: 2, Upserts: 72}
		id, _, err := st.SyncRunEnd(ctx, run, domain.SyncEnd{Interval: time.Hour, LeaseOwner: lease.Owner}, nil)
		if err != nil || id == 0 {
			t.Fatalf("SyncRunEnd: %d, %v", id, err)
		}
		var outcome string
		var upserts int
		if err := pool.QueryRow(ctx, `SELECT outcome, upserts FROM sync_runs WHERE id = $1 AND tenant_id = $2`, id, tid).Scan(&outcome, &upserts); err != nil {
			t.Fatal(err)
		}
		if outcome != string(domain.SyncSucceeded) || upserts != 72 {
			t.Errorf("run recorded as %s with %d upserts, want succeeded with 72", outcome, upserts)
		}
		var owner *string
		var last, next *time.Time
		var status string
		var failures int
		if err := pool.QueryRow(ctx, `SELECT sync_lease_owner::text, last_synced_at, next_sync_at, status, failure_count FROM tenants WHERE id = $1`,
			tid).Scan(&owner, &last, &next, &status, &failures); err != nil {
			t.Fatal(err)
		}
		if owner != nil || last == nil || next == nil || next.Sub(*last) != time.Hour || status != "active" || failures != 0 {
			t.Errorf("failing %v: tenant after the round's end: lease %v, last %v, next %v, %s, %d failures; want no lease, next an hour after last, active, 0",
				failing, owner, last, next, status, failures)
		}
		if failing {
			evs := pgtest.Events(t, pool, tid)
			if last := evs[len(evs)-1]; last.Type != domain.TenantActiveEvent {
				t.Errorf("the last event of a failing tenant that synced is %s %s, want %s", last.Type, last.Data, domain.TenantActiveEvent)
			}
		}
	}
}
