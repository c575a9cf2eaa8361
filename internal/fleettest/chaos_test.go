package fleettest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// chaosEnv shortens the worker's recovery timers so that a killed worker's
// tenants come back within seconds rather than the production bound.
var chaosEnv = map[string]string{"SYNC_LEASE": "5s", "SYNC_SLICE": "3s", "WORKER_RESCUE_AFTER": "20s"}

// TestChaosKill is issue #11's chaos test: the worker is SIGKILLed in the
// middle of a large tenant's first round, restarted, and killed again
// during a fleet round; restarted once more, it must bring every tenant to
// an exact copy on its own, and the runs of the killed workers must end
// abandoned, none left running. The change feed must tell every change once:
// no kill may lose an event or write one twice.
func TestChaosKill(t *testing.T) {
	small, large := size(200, 40), size(50000, 5000)
	seed, tids := fleetSeed(small, large)
	total := len(tids)
	h := newHarness(t, seed, tids, pgtest.URL(t))
	h.env = chaosEnv
	h.insertTenants()
	start := time.Now()
	h.startWorker()

	// Kill 1: inside the large tenant's first (full) round.
	h.waitUntil("the large tenant's round under way", 3*time.Minute, 2*time.Minute, func(s snapshot) bool { return s.largeMid })
	h.killWorker()
	// Read after the kill: a run that finished just before it is not the
	// dead worker's to abandon.
	killed := h.runningRuns()
	h.startWorker()
	h.waitUntil("every tenant synced after the first kill", 5*time.Minute, 2*time.Minute, func(s snapshot) bool {
		return s.synced == total && s.succeeded == total
	})
	h.assertExact(tids)

	// Kill 2: inside a fleet round. Every tenant changes and is due again;
	// the large tenant's delta tokens are reset so that its round (a full
	// resync) is long enough to be caught under way.
	for i := range small {
		h.emu.control(t, http.MethodPost, "/tenants/"+fleetTenantID(i)+"/users", entraemu.User{
			UserPrincipalName: fmt.Sprintf("new@fleet%d.example", i), DisplayName: "New Hire", GivenName: "New", Surname: "Hire",
			Mail: fmt.Sprintf("new@fleet%d.example", i), JobTitle: "Intern", AccountEnabled: true,
		}, nil)
	}
	dir := h.emu.directory(t, largeTenantID)
	gone := dir.Users[len(dir.Users)/2].ID
	h.emu.control(t, http.MethodDelete, "/tenants/"+largeTenantID+"/users/"+gone, nil, nil)
	h.emu.control(t, http.MethodPost, "/tenants/"+largeTenantID+"/delta/reset", nil, nil)
	var mark int64
	if err := h.db.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM sync_runs`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	round := time.Now()
	if _, err := h.db.Exec(context.Background(), `UPDATE tenants SET next_sync_at = now()`); err != nil {
		t.Fatal(err)
	}
	h.waitUntil("a fleet round under way", 3*time.Minute, 2*time.Minute, func(snapshot) bool {
		// Between two slices of its round the large tenant may have no
		// run open, but its nextLink checkpoint says the round is on.
		var underway bool
		err := h.db.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM sync_runs WHERE id > $1 AND outcome = 'succeeded') >= 5
	AND (EXISTS (SELECT FROM sync_runs WHERE id > $1 AND tenant_id = $2 AND outcome = 'running')
		OR EXISTS (SELECT FROM sync_state WHERE tenant_id = $2 AND link_kind = 'next'))`, mark, largeTenantID).Scan(&underway)
		return err == nil && underway
	})
	h.killWorker()
	killed = append(killed, h.runningRuns()...)
	h.startWorker()
	h.waitUntil("every tenant synced after the second kill", 5*time.Minute, 2*time.Minute, func(snapshot) bool {
		var n int
		err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM tenants WHERE last_synced_at >= $1`, round).Scan(&n)
		return err == nil && n == total
	})

	h.assertAllActiveSyncedSince(round)
	h.assertExact(tids)
	h.assertEvents(small, gone)
	h.assertRunsClosed(killed)
	h.assertNoOverlap()
	h.logFigures(start)
}

// TestPostgresRestart restarts the worker's Postgres (a private cluster:
// the shared one serves other tests) in the middle of a round: the worker
// process must ride it out and bring every tenant to an exact copy by
// itself.
func TestPostgresRestart(t *testing.T) { testPostgresOutage(t, (*pgCluster).restart) }

// TestPostgresCrash is TestPostgresRestart with Postgres killed (immediate
// stop) instead: the commits it had not yet written are lost, among them
// event-free ones the worker does not wait for; the copies still end
// exact, and the change feed still holds each creation once.
func TestPostgresCrash(t *testing.T) { testPostgresOutage(t, (*pgCluster).crash) }

func testPostgresOutage(t *testing.T, outage func(*pgCluster)) {
	pg := startPGCluster(t)
	seed, tids := fleetSeed(size(100, 30), size(10000, 3000))
	total := len(tids)
	h := newHarness(t, seed, tids, pg.URL())
	h.pg = pg
	h.env = chaosEnv
	h.migrate()
	h.insertTenants()
	// Slow the large tenant's Graph answers so that its first round lasts
	// well over the one-second poll below (unslowed it can finish within
	// a poll on a fast machine, and the restart would miss it).
	h.emu.control(t, http.MethodPut, "/tenants/"+largeTenantID+"/faults", map[string]string{"latency": "250ms"}, nil)
	start := time.Now()
	h.startWorker()

	h.waitUntil("a round under way", 3*time.Minute, 2*time.Minute, func(s snapshot) bool { return s.largeMid && s.synced < total })
	outage(pg)
	t.Log("postgres back")
	h.emu.control(t, http.MethodPut, "/tenants/"+largeTenantID+"/faults", map[string]string{}, nil)
	h.waitUntil("every tenant synced after the restart", 5*time.Minute, 2*time.Minute, func(s snapshot) bool {
		return s.synced == total && s.succeeded == total
	})
	if h.worker.exited() {
		t.Fatalf("the worker exited: %v", h.worker.err)
	}
	h.assertAllActiveSyncedSince(time.Time{})
	h.assertExact(tids)
	h.assertFeedOnce()
	h.assertRunsClosed(nil)
	h.assertNoOverlap()
	h.logFigures(start)
}
