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
