package webapp

import (
	"context"
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
		chromedp.Navigate(tb.base+"/console"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), operatorUPN),
		chromedp.SendKeys(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("tenant-search")),
	); err != nil {
		t.Fatalf("operator sign-in: %v", err)
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
		chromedp.Navigate(tb.base+"/console"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), devUPN),
		chromedp.SendKeys(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")),
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
