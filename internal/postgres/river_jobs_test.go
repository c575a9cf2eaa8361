package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/procstat"
)

// seedRiverJobs inserts n sync jobs in state into River's table, as River
// leaves them (a finalized state has its finalized_at).
func seedRiverJobs(tb testing.TB, pool *pgxpool.Pool, state string, n int) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `
INSERT INTO river_job (state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at, priority,
	args, attempted_by, kind, metadata, queue, tags)
SELECT $1::river_job_state, 1, 25, now(), now(),
	CASE WHEN $1 IN ('cancelled', 'completed', 'discarded') THEN now() END,
	now() + (g || ' s')::interval, 1, jsonb_build_object('tenant_id', gen_random_uuid()::text), ARRAY['worker-1'],
	'sync_tenant', '{}', 'default', '{}'
FROM generate_series(1, $2::int) AS g`, state, n)
	if err != nil {
		tb.Fatal(err)
	}
}

// groupByState is the count JobCountByState must agree with, and what it
// read before: one pass over the whole table.
const groupByState = `SELECT state::text, count(*) FROM river_job GROUP BY state`

// TestJobCountByState: the gauge counts every River state, as a GROUP BY
// over the table counts it, and says 0 for the states no job is in.
func TestJobCountByState(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	for state, n := range map[string]int{"available": 3, "completed": 40, "discarded": 2, "retryable": 1, "running": 5, "scheduled": 7} {
		seedRiverJobs(t, pool, state, n)
	}
	got, err := st.JobCountByState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for s, n := range counted(t, pool, groupByState) {
		want[s] = float64(n)
	}
	for _, s := range []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"} {
		if _, ok := want[s]; !ok {
			want[s] = 0
		}
	}
	if want["completed"] != 40 || want["cancelled"] != 0 {
		t.Fatalf("seeded jobs counted as %v", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JobCountByState (-GROUP BY +got):\n%s", diff)
	}
}

// BenchmarkJobCountByState reads the River jobs gauge over a day of a
// 20,000-tenant fleet's completed hourly syncs (480,000 jobs, River's
// default retention of 24 h) and a round's worth of scheduled ones; the
// baseline, measured in the same run, is the GROUP BY over the whole table
// the gauge used to run. It reports the machine's CPU per read (Postgres's
// parallel workers exit after the query, so only the whole machine sees
// their share) and the ratio to the baseline's (go test -run '^$' -bench
// JobCountByState ./internal/postgres/).
func BenchmarkJobCountByState(b *testing.B) {
	pool := pgtest.Pool(b)
	st := postgres.New(pool)
	ctx := context.Background()
	seedRiverJobs(b, pool, "completed", 480_000)
	seedRiverJobs(b, pool, "scheduled", 20_000)
	seedRiverJobs(b, pool, "available", 100)
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE river_job`); err != nil {
		b.Fatal(err)
	}
	cpu := func(n int, read func()) (time.Duration, time.Duration) {
		m0, err := procstat.Machine()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range n {
			read()
		}
		m1, err := procstat.Machine()
		if err != nil {
			b.Fatal(err)
		}
		return (m1 - m0) / time.Duration(n), time.Since(start) / time.Duration(n)
	}
	b.ResetTimer()
	got, wall := cpu(b.N, func() {
		if _, err := st.JobCountByState(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.StopTimer()
	base, baseWall := cpu(min(b.N, 20), func() { counted(b, pool, groupByState) })
	b.ReportMetric(float64(got.Microseconds())/1000, "cpu-ms/read")
	b.ReportMetric(float64(base.Microseconds())/1000, "group-by-cpu-ms/read")
	b.ReportMetric(float64(got)/float64(base), "cpu-ratio-to-group-by")
	b.ReportMetric(float64(wall)/float64(baseWall), "wall-ratio-to-group-by")
}
