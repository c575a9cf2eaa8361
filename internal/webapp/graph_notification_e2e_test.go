package webapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// emuControl sends one request to the emulator's control API and decodes
// its answer into out (when not nil).
func emuControl(t testing.TB, tb *testBundle, method, path string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, tb.emu.ControlURL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	res, err := tb.emu.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %d", method, path, res.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

// copiedUser is one user of the directory copy, as far as the test looks.
type copiedUser struct {
	Exists      bool
	DisplayName string
	Enabled     bool
}

func copiedUserOf(t testing.TB, tb *testBundle, tenant, id string) copiedUser {
	t.Helper()
	var u copiedUser
	err := tb.pool.QueryRow(context.Background(), `SELECT true, display_name, account_enabled FROM directory_users
		WHERE tenant_id = $1 AND id = $2`, tenant, id).Scan(&u.Exists, &u.DisplayName, &u.Enabled)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return u
}

// notifyingWorker starts the worker against the emulator with
// CHANGE_NOTIFICATIONS=on, its notification URLs on the server under test,
// and a periodic round an hour away: a change that reaches the copy sooner
// came through a notification.
func notifyingWorker(t testing.TB, tb *testBundle, concurrency int, more func(*jobs.Deps)) {
	t.Helper()
	// A pool of its own, sized as cmd/worker sizes it: a subscription job
	// holds one connection for its tenant's lock while it uses another.
	cfg, err := pgxpool.ParseConfig(tb.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = int32(jobs.PoolSize(concurrency))
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool)
	tokens, gc := jobstest.GatedClients(t, tb.emu, "", store)
	deps := &jobs.Deps{Store: store, Tokens: tokens, Graph: gc, Logger: slog.New(slog.DiscardHandler),
		SyncInterval: time.Hour, ConsentPropagationWait: 20 * time.Second,
		ChangeNotifications: true, NotificationURL: tb.base + "/graph/notifications", LifecycleURL: tb.base + "/graph/lifecycle"}
	if more != nil {
		more(deps)
	}
	jobstest.StartWorker(t, pool, deps, concurrency)
}

// eventually polls ok every 20 ms and returns how long it took to hold; it
// fails the test after limit. The limit is not an assertion on speed, only
// how long the test waits for the outcome.
func eventually(t testing.TB, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, limit)
	return 0
}

// TestNearRealTimeEndToEnd: a customer's admin connects through the portal
// with CHANGE_NOTIFICATIONS on; the worker subscribes the tenant at the
// emulator (which validates the server's endpoints), and a user created,
// updated, disabled and deleted through the emulator's control API each
// reaches the copy through a notification, with SYNC_INTERVAL an hour away.
// The latencies are logged; what is asserted is the outcome.
func TestNearRealTimeEndToEnd(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	notifyingWorker(t, tb, 4, nil)
	br := tb.browser(t)
	if res, body := br.signIn(contosoAdm); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %.300s", res.StatusCode, body)
	}
	res, body := br.get("/connect", true)
	if !strings.Contains(body, `id="consent"`) {
		t.Fatalf("no consent page at %s: %.500s", res.Request.URL, body)
	}
	res, body = br.post(res.Request.URL.String(), url.Values{"action": {"accept"}}, true)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/tenant" {
		t.Fatalf("connect ended at %s with %d: %.500s", res.Request.URL.Path, res.StatusCode, body)
	}
	subscribed := eventually(t, "active and subscribed", 2*time.Minute, func() bool {
		tn, err := tb.store.TenantGet(ctx, contosoID)
		if err != nil || tn.Status != domain.TenantActive {
			return false
		}
		n, err := tb.store.TenantNotificationsOne(ctx, contosoID)
		return err == nil && n.State == "subscribed" && len(n.Subscriptions) == 2
	})
	t.Logf("connected, synced and subscribed after %v", subscribed.Round(time.Millisecond))
	if subs := tb.emu.Subscriptions(contosoID); len(subs) != 2 {
		t.Fatalf("%d subscriptions at the emulator, want 2", len(subs))
	}
	var u struct {
		ID string `json:"id"`
	}
	emuControl(t, tb, http.MethodPost, "/tenants/"+contosoID+"/users",
		map[string]any{"userPrincipalName": "nrt@contoso.example", "displayName": "Near Real", "accountEnabled": true}, &u)
	d := eventually(t, "created user in the copy", 2*time.Minute, func() bool {
		c := copiedUserOf(t, tb, contosoID, u.ID)
		return c.Exists && c.DisplayName == "Near Real" && c.Enabled
	})
	t.Logf("created: in Postgres after %v", d.Round(time.Millisecond))

	emuControl(t, tb, http.MethodPatch, "/tenants/"+contosoID+"/users/"+u.ID, map[string]any{"displayName": "Near Realer"}, nil)
	d = eventually(t, "updated user in the copy", 2*time.Minute, func() bool {
		return copiedUserOf(t, tb, contosoID, u.ID).DisplayName == "Near Realer"
	})
	t.Logf("updated: in Postgres after %v", d.Round(time.Millisecond))

	emuControl(t, tb, http.MethodPatch, "/tenants/"+contosoID+"/users/"+u.ID, map[string]any{"accountEnabled": false}, nil)
	d = eventually(t, "disabled user in the copy", 2*time.Minute, func() bool {
		c := copiedUserOf(t, tb, contosoID, u.ID)
		return c.Exists && !c.Enabled
	})
	t.Logf("disabled: in Postgres after %v", d.Round(time.Millisecond))

	emuControl(t, tb, http.MethodDelete, "/tenants/"+contosoID+"/users/"+u.ID, nil, nil)
	d = eventually(t, "deleted user gone from the copy", 2*time.Minute, func() bool {
		return !copiedUserOf(t, tb, contosoID, u.ID).Exists
	})
	t.Logf("deleted: gone from Postgres after %v", d.Round(time.Millisecond))

	n, err := tb.store.TenantNotificationsOne(ctx, contosoID)
	if err != nil {
		t.Fatal(err)
	}
	if n.Notifications < 4 || n.LastNotificationAt == nil {
		t.Errorf("notification status after four changes: %+v", n)
	}
	jobstest.AssertCopy(t, tb.emu, tb.store, contosoID)
}

// TestNearRealTimeAfterOutage: the worker subscribes a tenant with its
// notification URLs behind a gate; while the gate answers 503 a user is
// created, and once it opens again the emulator's retry (Graph retries for
// up to 4 hours, docs/protocol.md §7) brings the change into the copy, with
// SYNC_INTERVAL an hour away.
func TestNearRealTimeAfterOutage(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *setupOpts) {
		o.emu = func(c *entraemu.Config) { c.NotificationRetryBase = 500 * time.Millisecond }
	})
	ctx := context.Background()
	base, down := gate(t, tb.base)
	notifyingWorker(t, tb, 4, func(d *jobs.Deps) {
		d.NotificationURL, d.LifecycleURL = base+"/graph/notifications", base+"/graph/lifecycle"
	})
	if err := tb.emu.Grant(contosoID, "User.Read.All", "GroupMember.Read.All", "Organization.Read.All"); err != nil {
		t.Fatal(err)
	}
	pgtest.ActiveTenant(t, tb.store, contosoID)
	if _, err := jobsOfBundle(t, tb).Insert(ctx, queue.SyncTenantArgs{TenantID: contosoID}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "subscribed", 2*time.Minute, func() bool {
		n, err := tb.store.TenantNotificationsOne(ctx, contosoID)
		return err == nil && n.State == "subscribed"
	})
	down.Store(true)
	u, err := tb.emu.CreateUser(contosoID, entraemu.User{UserPrincipalName: "outage@contoso.example", DisplayName: "Outage", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed deliveries", time.Minute, func() bool { return tb.emu.Counters(contosoID).NotificationsFailed >= 2 })
	if copiedUserOf(t, tb, contosoID, u.ID).Exists {
		t.Fatal("the user arrived while the endpoint was down: not through a notification")
	}
	down.Store(false)
	d := eventually(t, "user in the copy after the outage", 2*time.Minute, func() bool { return copiedUserOf(t, tb, contosoID, u.ID).Exists })
	t.Logf("in Postgres %v after the endpoint came back (%d failed deliveries before)", d.Round(time.Millisecond),
		tb.emu.Counters(contosoID).NotificationsFailed)
}

// jobsOfBundle is an insert-only River client on the bundle's pool.
func jobsOfBundle(t testing.TB, tb *testBundle) *river.Client[pgx.Tx] {
	t.Helper()
	c, err := queue.NewInserter(tb.pool)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
