package webapp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// waitFor polls cond until it holds or ctx ends (no timing is asserted:
// the deadline is the browser test's overall budget).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fullRuns counts the tenant's full sync runs that succeeded.
func fullRuns(t *testing.T, tb *testBundle, tid string) int {
	t.Helper()
	runs, err := tb.store.SyncRunList(context.Background(), tid, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range runs {
		if r.Outcome == domain.SyncSucceeded && r.Kind == domain.SyncFull {
			n++
		}
	}
	return n
}

// syncIdle reports that no sync job of the tenant is queued or running.
func syncIdle(t *testing.T, tb *testBundle, tid string) bool {
	t.Helper()
	var n int
	err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'sync_tenant'
		AND args->>'tenant_id' = $1 AND state IN ('available', 'pending', 'scheduled', 'running', 'retryable')`, tid).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 0
}

// TestBrowserConsole: with Contoso connected and synced by the in-process
// worker, an operator signs in, finds Contoso by domain, sees its sync
// chart, asks for a full resync and sees the new run; a non-operator is
// refused.
func TestBrowserConsole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)

	// Contoso's admin consented (as the connect flow records it); the
	// worker verifies and runs the first, real sync against the emulator.
	ins, err := queue.NewInserter(tb.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.store.Tx(context.Background(), func(tx pgx.Tx, st *postgres.Store) error {
		if _, err := st.TenantUpsertConsented(context.Background(), contosoID, contosoAdm, "c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6"); err != nil {
			return err
		}
		_, err := ins.InsertTx(context.Background(), tx, queue.VerifyTenantArgs{TenantID: contosoID}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, tb)
	waitFor(t, ctx, "the first sync", func() bool { return fullRuns(t, tb, contosoID) >= 1 && syncIdle(t, tb, contosoID) })

	// Sign in from the console link: the console sends visitors to sign in
	// and brings them back.
	if err := chromedp.Do(ctx,
		consoleSignInSteps(tb, operatorUPN),
		chromedp.WaitVisible(chromedp.ID("by-status")),
		chromedp.Click(chromedp.ID("all-tenants")),
		chromedp.WaitVisible(chromedp.ID("tenant-search")),
	); err != nil {
		t.Fatalf("operator sign-in, then the tenant list: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "contoso.example"),
		chromedp.Click(chromedp.ID("search")),
		waitURL("q=contoso.example"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-tenant="`+contosoID+`"] a`)),
	); err != nil {
		t.Fatalf("search by domain: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#tenants tbody tr`)))
	if err != nil || len(rows) != 1 {
		t.Fatalf("search found %d rows (%v), want Contoso only", len(rows), err)
	}
	screenshot(t, ctx, "console_tenants")
	accessible(t, ctx, "console_tenants")
	// On a phone the table becomes one labelled card per tenant.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-tenant="`+contosoID+`"] a`))); err != nil {
		t.Fatalf("phone width: %v", err)
	}
	screenshot(t, ctx, "console_tenants_phone")
	accessible(t, ctx, "console_tenants_phone")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 900), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-tenant="`+contosoID+`"] a`))); err != nil {
		t.Fatal(err)
	}

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-tenant="`+contosoID+`"] a`)),
		chromedp.WaitVisible(chromedp.ID("sync-chart")),
	); err != nil {
		t.Fatalf("open tenant: %v", err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main h1")))
	if err != nil || h1 != "Contoso" {
		t.Fatalf("tenant page heading %q (%v)", h1, err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#sync-chart rect`)))
	if err != nil || len(bars) < 2 {
		t.Fatalf("chart has %d bars (%v)", len(bars), err)
	}
	screenshot(t, ctx, "console_tenant")
	accessible(t, ctx, "console_tenant")

	// Full resync: the worker runs it; the page shows it after a reload.
	before := fullRuns(t, tb, contosoID)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("full-resync")),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	); err != nil {
		t.Fatalf("full resync: %v", err)
	}
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.notice`)))
	if err != nil || !strings.Contains(notice, "Full resync requested") {
		t.Fatalf("notice %q (%v)", notice, err)
	}
	waitFor(t, ctx, "the resync", func() bool { return fullRuns(t, tb, contosoID) > before })
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("runs"))); err != nil {
		t.Fatal(err)
	}
	done, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#runs tr[data-kind="full"][data-outcome="succeeded"]`)))
	if err != nil || len(done) != before+1 {
		t.Fatalf("%d succeeded full runs on the page (%v), want %d", len(done), err, before+1)
	}
	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("events")))
	if err != nil || !strings.Contains(events, "full resync") || !strings.Contains(events, operatorUPN) {
		t.Errorf("history %q (%v) lacks the resync by the operator", events, err)
	}
	screenshot(t, ctx, "console_tenant_resynced")
	accessible(t, ctx, "console_tenant_resynced")

	// Someone without the Operator role, in a separate browser profile.
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := chromedp.Do(other,
		consoleSignInSteps(tb, devUPN),
		chromedp.WaitVisible(chromedp.ID("console-message")),
	); err != nil {
		t.Fatalf("non-operator: %v", err)
	}
	h1, err = chromedp.Run(other, chromedp.Text(chromedp.CSS("main h1")))
	if err != nil || h1 != "You cannot use the operator console" {
		t.Errorf("non-operator heading %q (%v)", h1, err)
	}
	screenshot(t, other, "console_denied")
}

// overviewFleet are the tenants of TestBrowserConsoleOverview (and of its
// screenshots): a small fleet with every status.
var overviewFleet = []struct {
	name, status, reason string
	ago                  time.Duration // since the status changed, and since the last sync for active ones
}{
	{"Contoso", "active", "", 12 * time.Minute},
	{"Fabrikam", "active", "", 25 * time.Minute},
	{"Northwind Traders", "active", "", 41 * time.Minute},
	{"Tailspin Toys", "active", "", 55 * time.Minute},
	{"Wide World Importers", "active", "", 63 * time.Minute},
	{"Adventure Works", "active", "", 70 * time.Minute},
	{"Woodgrove Bank", "active", "", 82 * time.Minute},
	{"Proseware", "active", "", 95 * time.Minute},
	{"Lucerne Publishing", "active", "", 2 * time.Hour},
	{"Alpine Ski House", "active", "", 3 * time.Hour},
	{"Coho Winery", "active", "", 5 * time.Hour},
	{"Fourth Coffee", "active", "", 26 * time.Hour},
	{"Margie's Travel", "pending", "consented; verifying", 2 * time.Minute},
	{"Trey Research", "pending", "consented; verifying", 4 * time.Minute},
	{"Relecloud", "failing", "sync failed (serviceNotAvailable); retrying with backoff", 35 * time.Minute},
	{"VanArsdel", "failing", "sync failed (TooManyRequests); retrying after Retry-After", 50 * time.Minute},
	{"Wingtip Toys", "failing", "sync failed (generalException)", 3 * time.Hour},
	{"Humongous Insurance", "consent_revoked", "the app was removed from the tenant (AADSTS700016)", 20 * time.Minute},
	{"Blue Yonder Airlines", "consent_revoked", "an administrator disabled the app (AADSTS7000112)", 7 * time.Hour},
	{"Graphic Design Institute", "insufficient_permissions", "granted roles lack GroupMember.Read.All", 90 * time.Minute},
	{"School of Fine Art", "insufficient_permissions", "granted roles lack User.Read.All", 30 * time.Hour},
	{"Southridge Video", "disconnected", "disconnected by the customer's admin", 72 * time.Hour},
}

// seedOverviewFleet writes overviewFleet with sync runs over the last 24
// hours (a few an hour, some failed or paused) and a few queued jobs; it
// returns the tenant IDs by name.
func seedOverviewFleet(t *testing.T, tb *testBundle) map[string]string {
	t.Helper()
	ctx := context.Background()
	now := tb.clock.Now().UTC()
	ids := map[string]string{}
	for i, f := range overviewFleet {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", 0x5eed0000+i, i)
		ids[f.name] = id
		slug := strings.ToLower(strings.NewReplacer(" ", "", "'", "").Replace(f.name))
		var synced *time.Time
		if f.status == "active" || f.status == "failing" {
			synced = new(now.Add(-f.ago))
		}
		if _, err := tb.pool.Exec(ctx, `
INSERT INTO tenants (id, status, status_reason, status_changed_at, display_name, domains, consented_at, consented_by, last_synced_at, user_count)
VALUES ($1, $2, $3, $4, $5, ARRAY[$6 || '.example'], $4, 'admin@' || $6 || '.example', $7, $8)`,
			id, f.status, f.reason, now.Add(-f.ago), f.name, slug, synced, 40+i*17); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, outcome, error_code, throttled_waits)
SELECT t.id, 'delta', s, s + interval '3 seconds',
	CASE WHEN t.status = 'failing' AND h % 4 = 0 THEN 'failed' WHEN t.status = 'failing' AND h % 4 = 1 THEN 'snoozed' ELSE 'succeeded' END,
	CASE WHEN t.status = 'failing' AND h % 4 = 0 THEN 'serviceNotAvailable' WHEN t.status = 'failing' AND h % 4 = 1 THEN 'TooManyRequests' ELSE '' END,
	CASE WHEN h % 7 = 3 THEN 1 ELSE 0 END
FROM tenants t, generate_series(1, 23) AS h, LATERAL (SELECT $1::timestamptz - h * interval '1 hour' + (t.user_count % 50) * interval '1 minute' AS s) AS x
WHERE t.status IN ('active', 'failing') AND (h + t.user_count) % 3 <> 0`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, outcome, error_code)
SELECT id, 'delta', status_changed_at, status_changed_at, 'failed', substring(status_reason from 'AADSTS[0-9]+')
FROM tenants WHERE status = 'consent_revoked'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO river_job (kind, args, max_attempts, state, scheduled_at)
SELECT k, '{}', 25, st::river_job_state, now() + interval '5 minutes'
FROM (VALUES ('sync_tenant', 'available'), ('sync_tenant', 'available'), ('sync_tenant', 'scheduled'),
	('sync_tenant', 'retryable'), ('verify_tenant', 'available')) AS j(k, st)`); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestBrowserConsoleOverview: an operator lands on the fleet overview,
// which passes axe at desktop and phone widths, follows a status to its
// list, and opens the needs-action page, whose fields hold each tenant's
// re-consent link.
func TestBrowserConsoleOverview(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)
	ids := seedOverviewFleet(t, tb)

	if err := chromedp.Do(ctx,
		consoleSignInSteps(tb, operatorUPN),
		chromedp.WaitVisible(chromedp.ID("by-status")),
	); err != nil {
		t.Fatalf("operator sign-in: %v", err)
	}
	text := func(sel string) string { t.Helper(); return textOf(t, ctx, sel) }
	if n := text(`#by-status li[data-status="active"] .n`); n != "12" {
		t.Errorf("%s active tenants on the overview, want 12", n)
	}
	if first := text(`#attention tbody tr:first-child th`); first != "Humongous Insurance" {
		t.Errorf("first tenant needing attention is %q, want Humongous Insurance (revoked 20 min ago)", first)
	}
	if worst := text(`#worst-lag tbody tr:first-child th`); worst != "Fourth Coffee" {
		t.Errorf("worst lag is %q, want Fourth Coffee (26 h)", worst)
	}
	bars, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#runs-chart g`)))
	if err != nil || len(bars) != 24 {
		t.Errorf("chart has %d hourly bars (%v), want 24", len(bars), err)
	}
	screenshot(t, ctx, "console_overview")
	accessible(t, ctx, "console_overview")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("by-status"))); err != nil {
		t.Fatalf("phone width: %v", err)
	}
	accessible(t, ctx, "console_overview_phone")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 900), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("by-status"))); err != nil {
		t.Fatal(err)
	}

	// A status tile opens the tenant list filtered to it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#by-status li[data-status="failing"] a`)),
		chromedp.WaitVisible(chromedp.ID("tenants"))); err != nil {
		t.Fatalf("failing tile: %v", err)
	}
	if rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#tenants tbody tr [data-status="failing"]`))); err != nil || len(rows) != 3 {
		t.Errorf("the failing list has %d failing rows (%v), want 3", len(rows), err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(tb.base+"/console"), chromedp.WaitVisible(chromedp.ID("needs-action-link")),
		chromedp.Click(chromedp.ID("needs-action-link")), chromedp.WaitVisible(chromedp.ID("needs-action"))); err != nil {
		t.Fatalf("needs-action page: %v", err)
	}
	id := ids["Humongous Insurance"]
	link, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("link-"+id)))
	if err != nil || link != AdminLink(tb.srv.cfg.PublicBaseURL)(id) {
		t.Errorf("Humongous Insurance's link %q (%v), want the portal's connect link", link, err)
	}
	items, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`#needs-action > li`)))
	if err != nil || len(items) != 4 {
		t.Errorf("%d tenants need their admin (%v), want 4", len(items), err)
	}
	screenshot(t, ctx, "console_needs_action")
	accessible(t, ctx, "console_needs_action")
}
