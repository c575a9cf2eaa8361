package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestFleetOverviewSummaries: the counters that migration 00075's triggers
// keep agree with counting the tables after concurrent status moves in
// opposite directions (which must not deadlock on the counter rows),
// consents, deletions, and sync runs started, finished and deleted.
//
// It is not parallel: its bursts of transactions, running beside
// TestEventsAfterHoldsBackWhatMayStillCommitBefore, would hold back the
// cluster-wide snapshot xmin that test reads.
func TestFleetOverviewSummaries(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = fmt.Sprintf("5eed%04x-0000-4000-8000-%012x", i, i)
		pgtest.ActiveTenant(t, st, ids[i])
	}
	// Half the tenants go active → failing → active, the other half start
	// failing and go the other way, all at once, several times.
	for _, id := range ids[4:] {
		if err := st.TenantSetStatus(ctx, id, domain.TenantFailing, "sync failed", "test"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			moves := []domain.TenantStatus{domain.TenantFailing, domain.TenantActive}
			if i >= 4 {
				moves[0], moves[1] = moves[1], moves[0]
			}
			for round := range 10 {
				for _, to := range moves {
					if err := st.TenantSetStatus(ctx, id, to, fmt.Sprintf("round %d", round), "test"); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent status moves: %v", err)
	}
	if _, err := st.TenantUpsertConsented(ctx, ids[0], "admin@x.example", "oid"); err != nil { // active → pending
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}

	var runs []int64
	for _, id := range ids[2:] {
		var run int64
		if id != ids[5] && id != ids[2] { // those two are written whole when they end
			var err error
			if run, err = st.SyncRunStart(ctx, id, domain.SyncFull, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if id == ids[7] {
			runs = append(runs, run)
			continue // left running
		}
		r := domain.SyncRun{ID: run, TenantID: id, Kind: domain.SyncFull, Outcome: domain.SyncSucceeded, StartedAt: time.Now()}
		switch id {
		case ids[3]:
			r.Outcome, r.ErrorCode = domain.SyncFailed, "AADSTS700016"
		case ids[4]:
			r.Outcome, r.ErrorCode = domain.SyncSnoozed, "TooManyRequests"
		case ids[5]:
			r.ThrottledWaits = 3
		}
		id, err := st.SyncRunFinish(ctx, r)
		if err != nil || run != 0 && id != run {
			t.Fatalf("finish run %d: %d, %v", run, id, err)
		}
		runs = append(runs, id)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, ids[6]); err != nil { // its run goes too
		t.Fatal(err)
	}

	wantStatus, gotStatus := counted(t, pool, `SELECT status, count(*) FROM tenants GROUP BY status`),
		counted(t, pool, `SELECT status, n FROM tenant_status_counts WHERE n <> 0`)
	if d := cmp.Diff(wantStatus, gotStatus); d != "" {
		t.Errorf("tenant_status_counts (-counted +kept):\n%s", d)
	}
	if wantStatus["pending"] != 1 || wantStatus["active"]+wantStatus["failing"] != 5 {
		t.Errorf("the moves did not happen: %v", wantStatus)
	}
	// The worker's tenantsync_tenants gauge reads the kept counts.
	byStatus, err := st.TenantCountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range domain.TenantStatuses {
		if got, ok := byStatus[string(s)]; !ok || got != float64(wantStatus[string(s)]) {
			t.Errorf("TenantCountByStatus %s = %v (present %t), counted %d", s, got, ok, wantStatus[string(s)])
		}
	}
	if len(byStatus) != len(domain.TenantStatuses) {
		t.Errorf("TenantCountByStatus: %v, want the %d statuses", byStatus, len(domain.TenantStatuses))
	}
	hours := `SELECT outcome || '/' || %s, sum(n) FROM (%s) AS r GROUP BY 1 HAVING sum(n) <> 0`
	wantRuns := counted(t, pool, fmt.Sprintf(hours, "k", `
SELECT outcome, 'runs' AS k, 1 AS n FROM sync_runs
UNION ALL SELECT outcome, 'throttled', 1 FROM sync_runs r WHERE sync_run_throttled(r)
UNION ALL SELECT outcome, 'token_failed', 1 FROM sync_runs r WHERE sync_run_token_failed(r)`))
	gotRuns := counted(t, pool, fmt.Sprintf(hours, "k", `
SELECT outcome, 'runs' AS k, runs AS n FROM sync_run_hours
UNION ALL SELECT outcome, 'throttled', throttled FROM sync_run_hours
UNION ALL SELECT outcome, 'token_failed', token_failed FROM sync_run_hours`))
	if d := cmp.Diff(wantRuns, gotRuns); d != "" {
		t.Errorf("sync_run_hours (-counted +kept):\n%s", d)
	}
	want := map[string]int{"succeeded/runs": 2, "failed/runs": 1, "failed/token_failed": 1, "snoozed/runs": 1,
		"snoozed/throttled": 1, "succeeded/throttled": 1, "running/runs": 1}
	if d := cmp.Diff(want, wantRuns); d != "" {
		t.Errorf("the runs were not written as meant (-want +got):\n%s", d)
	}

	o, err := st.FleetOverview(ctx, time.Now(), 20, 10)
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs.Total() != len(runs)-1 || o.Runs.ThrottledTenants != 2 || o.Runs.TokenFailedTenants != 1 || len(o.Hours) != 24 {
		t.Errorf("overview runs %+v over %d hours, want %d runs, 2 throttled tenants, 1 token-failed", o.Runs, len(o.Hours), len(runs)-1)
	}
}

// counted runs a two-column (text, count) query into a map.
func counted(t testing.TB, pool *pgxpool.Pool, sql string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var (
		k string
		n int
	)
	for rows.Next() {
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
