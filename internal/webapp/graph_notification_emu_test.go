package webapp

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// emuSubscribe creates a subscription on the emulator's Graph for tenant,
// as the worker does (docs/protocol.md §7), with notifications sent to
// notifyBase, and returns its ID. The emulator validates both URLs first.
func emuSubscribe(t testing.TB, tb *testBundle, tenant, resource, notifyBase, clientState string) string {
	t.Helper()
	app := tb.emu.DefaultApp()
	ts, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: tb.emu.AuthorityHost, GraphBaseURL: tb.emu.GraphBaseURL,
		ClientID: app.ClientID, Secret: app.Secrets[0].Value, HTTPClient: tb.emu.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{
		"changeType": "updated,deleted", "resource": resource, "clientState": clientState,
		"notificationUrl": notifyBase + "/graph/notifications", "lifecycleNotificationUrl": notifyBase + "/graph/lifecycle",
		"expirationDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
	})
	req, _ := http.NewRequest(http.MethodPost, tb.emu.GraphBaseURL+"/v1.0/subscriptions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Value)
	req.Header.Set("Content-Type", "application/json")
	res, err := tb.emu.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %d %v %s", res.StatusCode, err, out.Error.Message)
	}
	return out.ID
}

// storeSubscription stores the emulator's subscription as the worker does:
// its ID with the hash of the clientState the worker chose.
func storeSubscription(t testing.TB, tb *testBundle, id, tenant, resource, clientState string) testSubscription {
	t.Helper()
	s := testSubscription{ID: id, TenantID: tenant, Resource: resource, ClientState: clientState}
	if _, err := tb.pool.Exec(context.Background(), `INSERT INTO graph_subscriptions (id, tenant_id, resource, client_state_hash, expires_at)
		VALUES ($1, $2, $3, sha256(convert_to($4, 'UTF8')), now() + interval '1 day')`, id, tenant, resource, clientState); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitState polls until the tenant's notification state satisfies ok. It
// asserts no timing: a minute is only how long it waits before failing.
func waitState(t testing.TB, tb *testBundle, tenant string, ok func(notificationState) bool) notificationState {
	t.Helper()
	var st notificationState
	for range 1200 {
		if st = notificationStateOf(t, tb.pool, tenant); ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("tenant %s: state %+v never came", tenant, st)
	return st
}

// waitDelivered polls until the emulator has delivered n notifications of
// the tenant's subscriptions (answered 2xx).
func waitDelivered(t testing.TB, tb *testBundle, tenant string, n int) {
	t.Helper()
	for range 1200 {
		if tb.emu.Counters(tenant).NotificationsDelivered >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("tenant %s: %d notifications delivered, want %d", tenant, tb.emu.Counters(tenant).NotificationsDelivered, n)
}

// The emulator, acting as Graph, validates both URLs and delivers real
// notifications: a change queues the tenant's sync and a
// reauthorizationRequired its ensure_subscriptions job. Notifications of a
// subscription we did not make, or whose clientState is not the one we
// stored, change nothing though the emulator sees them accepted.
func TestGraphNotificationsFromTheEmulator(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	for _, tid := range []string{contosoID, fabrikamID} {
		if err := tb.emu.Grant(tid, "User.Read.All", "GroupMember.Read.All"); err != nil {
			t.Fatal(err)
		}
		pgtest.ActiveTenant(t, tb.store, tid)
	}
	users := storeSubscription(t, tb, emuSubscribe(t, tb, contosoID, "users", tb.base, "contoso-secret-1"), contosoID, "users", "contoso-secret-1")

	if _, err := tb.emu.CreateUser(contosoID, entraemu.User{UserPrincipalName: "new@contoso.example", DisplayName: "New", AccountEnabled: true}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, tb, contosoID, func(s notificationState) bool { return s.Notified && s.SyncJobs == 1 })
	t.Logf("contoso after a change: %+v", st)

	if err := tb.emu.SendLifecycle(users.ID, lifecycleReauthorize); err != nil {
		t.Fatal(err)
	}
	waitState(t, tb, contosoID, func(s notificationState) bool { return s.Reauthorize == 1 })

	// Fabrikam: one subscription we never stored (a tenant we do not serve
	// as far as notifications go), one whose clientState differs from ours.
	emuSubscribe(t, tb, fabrikamID, "users", tb.base, "someone-elses-secret")
	forged := emuSubscribe(t, tb, fabrikamID, "groups", tb.base, "forged-secret")
	storeSubscription(t, tb, forged, fabrikamID, "groups", "the-secret-we-chose")
	before := tb.emu.Counters(fabrikamID).NotificationsDelivered
	u, err := tb.emu.CreateUser(fabrikamID, entraemu.User{UserPrincipalName: "x@fabrikam.example", DisplayName: "X", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := tb.emu.CreateGroup(fabrikamID, entraemu.Group{DisplayName: "Forged"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.emu.AddMember(fabrikamID, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, tb, fabrikamID, before+3)
	if got := notificationStateOf(t, tb.pool, fabrikamID); got != (notificationState{}) {
		t.Errorf("forged notifications changed fabrikam: %+v", got)
	}
	counts := notificationCounts(t, tb.base)
	if counts["notifications/unknown_subscription"] < 1 || counts["notifications/bad_client_state"] < 2 {
		t.Errorf("refusals not counted: %v", counts)
	}
	var n int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'tenant_id' = $1`, fabrikamID).Scan(&n); err != nil || n != 0 {
		t.Errorf("forged notifications queued %d jobs (%v)", n, err)
	}
}

// While the notification endpoint is down the emulator's deliveries fail;
// it retries (as Graph does, for up to 4 hours, docs/protocol.md §7) and
// the change arrives once the endpoint is back.
func TestGraphNotificationsAfterEndpointOutage(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *setupOpts) {
		o.emu = func(c *entraemu.Config) { c.NotificationRetryBase = 200 * time.Millisecond }
	})
	if err := tb.emu.Grant(contosoID, "User.Read.All", "GroupMember.Read.All"); err != nil {
		t.Fatal(err)
	}
	pgtest.ActiveTenant(t, tb.store, contosoID)
	gateBase, down := gate(t, tb.base)

	id := emuSubscribe(t, tb, contosoID, "users", gateBase, "outage-secret")
	storeSubscription(t, tb, id, contosoID, "users", "outage-secret")
	down.Store(true)
	if _, err := tb.emu.CreateUser(contosoID, entraemu.User{UserPrincipalName: "late@contoso.example", DisplayName: "Late", AccountEnabled: true}); err != nil {
		t.Fatal(err)
	}
	for range 1200 {
		if tb.emu.Counters(contosoID).NotificationsFailed >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := notificationStateOf(t, tb.pool, contosoID); got != (notificationState{}) {
		t.Fatalf("a notification arrived through a closed gate: %+v", got)
	}
	down.Store(false)
	st := waitState(t, tb, contosoID, func(s notificationState) bool { return s.Notified && s.SyncJobs == 1 })
	t.Logf("after the outage (%d failed attempts): %+v", tb.emu.Counters(contosoID).NotificationsFailed, st)
}

// gate starts a proxy in front of the server at target and returns its base
// URL and its switch: while down, it answers 503, as a failing load
// balancer would.
func gate(t testing.TB, target string) (string, *atomic.Bool) {
	t.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	down := new(atomic.Bool)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), down
}
