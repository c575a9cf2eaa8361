package fleettest

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// subscriptionCounts is how many subscriptions the emulator and Postgres hold.
func (h *harness) subscriptionCounts() (emu, pg int) {
	h.t.Helper()
	var subs []entraemu.SubscriptionInfo
	h.emu.control(h.t, http.MethodGet, "/subscriptions", nil, &subs)
	if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM graph_subscriptions`).Scan(&pg); err != nil {
		h.t.Fatal(err)
	}
	return len(subs), pg
}

// TestNotificationsChaosKill is issue 17's crash test: with
// CHANGE_NOTIFICATIONS=on, a fleet subscribes after its first round; the
// worker is SIGKILLed while it creates subscriptions and restarted. In the
// end every active tenant has exactly its two subscriptions at the emulator,
// the same ones Postgres knows, and no subscription of ours is left
// orphaned at the emulator.
func TestNotificationsChaosKill(t *testing.T) {
	n := size(300, 60)
	seed, tids := fleetSeed(n, 0)
	h := newHarness(t, seed, tids, pgtest.URL(t))
	base := jobstest.NotificationReceiver(t)
	h.env = maps.Clone(chaosEnv)
	h.env["CHANGE_NOTIFICATIONS"] = "on"
	h.env["PUBLIC_BASE_URL"] = base
	h.insertTenants()
	h.startWorker()

	h.waitUntil("subscriptions being created", 5*time.Minute, 2*time.Minute, func(snapshot) bool {
		var subs int
		err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM graph_subscriptions`).Scan(&subs)
		return err == nil && subs >= 20
	})
	h.killWorker()
	emu, pg := h.subscriptionCounts()
	t.Logf("at the kill: %d subscriptions at the emulator, %d in Postgres (of %d)", emu, pg, 2*n)
	// The kill rarely falls between Graph's create and the save: make sure
	// some tenants whose subscribing the kill interrupted (or that had not
	// started) have such orphans, as a worker dying there leaves them.
	var pending []string
	if err := h.db.QueryRow(context.Background(), `
SELECT coalesce(array_agg(id), '{}') FROM (
	SELECT t.id::text AS id FROM tenants t LEFT JOIN tenant_notifications n ON n.tenant_id = t.id
	WHERE n.state IS DISTINCT FROM 'subscribed' ORDER BY t.id LIMIT 5) p`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		t.Fatal("every tenant was subscribed before the kill; nothing was interrupted")
	}
	orphans := h.createOrphans(base, pending)
	h.startWorker()

	h.waitSubscribed(n)
	h.assertSubscriptionsExact(base, tids, orphans)
	if err := h.worker.stop(45 * time.Second); err != nil {
		t.Errorf("worker stop: %v", err)
	}
	if lines := h.errorLines(); len(lines) > 0 {
		t.Errorf("%d ERROR lines in the worker's log, e.g.:\n%s", len(lines), strings.Join(lines[:min(5, len(lines))], "\n"))
	}
}

// TestNotificationsPostgresRestart restarts Postgres (a private cluster)
// while a fleet's subscriptions are being created: the worker must ride it
// out and end with every tenant's two subscriptions at the emulator, the
// same ones Postgres knows, none orphaned by a write the restart cut off.
func TestNotificationsPostgresRestart(t *testing.T) {
	pg := startPGCluster(t)
	n := size(200, 50)
	seed, tids := fleetSeed(n, 0)
	h := newHarness(t, seed, tids, pg.URL())
	h.pg = pg
	base := jobstest.NotificationReceiver(t)
	h.env = maps.Clone(chaosEnv)
	h.env["CHANGE_NOTIFICATIONS"] = "on"
	h.env["PUBLIC_BASE_URL"] = base
	h.migrate()
	h.insertTenants()
	h.startWorker()

	h.waitUntil("subscriptions being created", 5*time.Minute, 2*time.Minute, func(snapshot) bool {
		var subs int
		err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM graph_subscriptions`).Scan(&subs)
		return err == nil && subs >= 20 && subs < 2*n
	})
	emu, _ := h.subscriptionCounts()
	pg.restart()
	t.Logf("postgres restarted with %d of %d subscriptions at the emulator", emu, 2*n)

	h.waitSubscribed(n)
	if h.worker.exited() {
		t.Fatalf("the worker exited: %v", h.worker.err)
	}
	h.assertSubscriptionsExact(base, tids, nil)
}

// createOrphans creates a users subscription to our notification URL for
// each tenant directly at the emulator, as the app, unknown to Postgres.
func (h *harness) createOrphans(base string, tids []string) []string {
	t := h.t
	t.Helper()
	tokens, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: h.emu.info.AuthorityHost, GraphBaseURL: h.emu.info.GraphBaseURL,
		ClientID: h.emu.info.ClientID, Secret: h.emu.info.ClientSecret, HTTPClient: h.emu.hc})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Config{BaseURL: h.emu.info.GraphBaseURL, HTTPClient: h.emu.hc, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tid := range tids {
		s, err := gc.CreateSubscription(context.Background(), tid, graph.NewSubscription{Resource: "users", ChangeType: "updated,deleted",
			NotificationURL: base + "/graph/notifications", LifecycleNotificationURL: base + "/graph/lifecycle",
			ExpiresAt: time.Now().Add(24 * time.Hour), ClientState: "an-orphans-client-state"})
		if err != nil {
			t.Fatalf("orphan for tenant %s: %v", tid, err)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

// waitSubscribed waits until every tenant is subscribed, at the emulator
// and in Postgres.
func (h *harness) waitSubscribed(n int) {
	h.t.Helper()
	h.waitUntil("every tenant subscribed", 5*time.Minute, 2*time.Minute, func(snapshot) bool {
		var subscribed, rows int
		err := h.db.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM tenant_notifications WHERE state = 'subscribed'), (SELECT count(*) FROM graph_subscriptions)`).Scan(&subscribed, &rows)
		if err != nil || subscribed != n || rows != 2*n {
			return false
		}
		emu, _ := h.subscriptionCounts()
		return emu == 2*n
	})
}

// assertSubscriptionsExact checks that every tenant has exactly two
// subscriptions at the emulator, to the receiver at base, the same two
// Postgres knows, and that none of orphans is left at the emulator.
func (h *harness) assertSubscriptionsExact(base string, tids, orphans []string) {
	t := h.t
	t.Helper()
	n := len(tids)
	var subs []entraemu.SubscriptionInfo
	h.emu.control(t, http.MethodGet, "/subscriptions", nil, &subs)
	atEmu := map[string][]string{}
	for _, s := range subs {
		if s.NotificationURL != base+"/graph/notifications" {
			t.Errorf("subscription %s notifies %s", s.ID, s.NotificationURL)
		}
		atEmu[strings.ToLower(s.TenantID)] = append(atEmu[strings.ToLower(s.TenantID)], s.ID+" "+strings.TrimPrefix(s.Resource, "/"))
	}
	rows, err := h.db.Query(context.Background(), `SELECT tenant_id::text, id || ' ' || resource FROM graph_subscriptions`)
	if err != nil {
		t.Fatal(err)
	}
	inPG := map[string][]string{}
	for rows.Next() {
		var tid, sub string
		if err := rows.Scan(&tid, &sub); err != nil {
			t.Fatal(err)
		}
		inPG[tid] = append(inPG[tid], sub)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, tid := range tids {
		e, p := atEmu[tid], inPG[tid]
		slices.Sort(e)
		slices.Sort(p)
		if len(e) != 2 || !slices.Equal(e, p) {
			bad++
			if bad <= 5 {
				t.Errorf("tenant %s: emulator %v, Postgres %v; want the same two", tid, e, p)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tenants' subscriptions differ", bad, n)
	}
	for _, id := range orphans {
		for _, s := range subs {
			if s.ID == id {
				t.Errorf("orphan %s of tenant %s is still at the emulator", id, s.TenantID)
			}
		}
	}
	if len(atEmu) != n {
		t.Errorf("subscriptions at the emulator for %d tenants, want %d", len(atEmu), n)
	}
}
