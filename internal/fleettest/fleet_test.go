package fleettest

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestFleet is issue #11's fleet scenario: hundreds of tenants due at once
// on a worker with its default configuration (WORKER_CONCURRENCY 8, the
// default pool) must all sync, exactly, without an ERROR in the worker's
// log. Before the fix, every pool connection ended up held by a sync's
// advisory lock and nothing moved.
func TestFleet(t *testing.T) {
	n := size(300, 60)
	seed, tids := fleetSeed(n, 0)
	h := newHarness(t, seed, tids, pgtest.URL(t))
	h.insertTenants()
	start := time.Now()
	h.startWorker()

	h.waitUntil("every tenant synced", 5*time.Minute, 2*time.Minute, func(s snapshot) bool {
		return s.synced == n && s.succeeded == n
	})
	t.Logf("%d tenants synced in %s", n, time.Since(start).Round(time.Second))
	h.assertAllActiveSyncedSince(start)
	h.assertExact(sample(tids, 20))
	h.assertRunsClosed(nil)
	h.logFigures(start)

	if err := h.worker.stop(45 * time.Second); err != nil {
		t.Errorf("worker stop: %v", err)
	}
	if lines := h.errorLines(); len(lines) > 0 {
		t.Errorf("%d ERROR lines in the worker's log, e.g.:\n%s", len(lines), strings.Join(lines[:min(5, len(lines))], "\n"))
	}
}
