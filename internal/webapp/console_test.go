package webapp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// Home-tenant users of entraemu's seed: the operator holds the Operator app
// role, the developer does not.
const (
	operatorUPN = "operator@tenantsync.example"
	devUPN      = "dev@tenantsync.example"
)

// consoleSamplePages are the tenants list's views for TestRenderEveryPage.
func consoleSamplePages(now time.Time, tn domain.Tenant, _ domain.SyncRun) []page {
	tn.Domains = []string{"contoso.example", "contoso.onmicrosoft.com", "contoso.net"}
	rows := []consoleTenantRow{{Tenant: tn, Status: "Active", StatusClass: "ok", Domains: "contoso.example, contoso.onmicrosoft.com", MoreDomains: 1}}
	opts := []consoleOption{{Value: "", Label: "Any"}, {Value: "active", Label: "Active", Selected: true}}
	return []page{
		&consoleTenantsView{Layout: Layout{Title: "Tenants"}, Statuses: opts, Sorts: opts, Rows: rows, NextURL: "/console/tenants?after=x.y"},
		&consoleTenantsView{Layout: Layout{Title: "Tenants"}, Query: "nothing", Filtered: true, Later: true, FirstURL: "/console/tenants?q=nothing"},
	}
}

// consoleTenantSamplePages are the tenant page's views: healthy with a
// chart and jobs, failing with a problem, and without actions.
func consoleTenantSamplePages(now time.Time, tn domain.Tenant, run domain.SyncRun) []page {
	fin := now.Add(1500 * time.Millisecond)
	done := run
	done.FinishedAt, done.Outcome = &fin, domain.SyncSucceeded
	failed := done
	failed.Outcome, failed.Error, failed.ErrorCode = domain.SyncFailed, "graph: forbidden (HTTP 403 Authorization_RequestDenied): Insufficient privileges", "Authorization_RequestDenied"
	runs := []domain.SyncRun{failed, done, run}
	var rows []consoleRunRow
	for _, r := range runs {
		rows = append(rows, consoleRunRow{SyncRun: r, Duration: "1.5 s", ThrottledFor: "0 ms", Outcome: string(r.Outcome), OutcomeClass: outcomeClass[r.Outcome]})
	}
	bad := tn
	bad.Status, bad.StatusReason = domain.TenantFailing, "sync failed (AADSTS7000222)"
	return []page{
		&consoleTenantView{Layout: Layout{Title: "Contoso", Notice: consoleNotices["sync"]}, Tenant: tn, Status: "s", StatusLabel: "Active", StatusClass: "ok",
			Roles: []roleCoverage{{Role: "User.Read.All", Covered: true}}, Runs: rows, Chart: newSyncChart(runs),
			Events:    []domain.TenantEvent{{At: now, Kind: "status_changed", FromStatus: "pending", ToStatus: "active", Reason: "verified", Actor: "worker"}},
			Jobs:      []consoleJobRow{{TenantJob: jobsSample(now), State: "failed", StateClass: "bad"}},
			JobCounts: []consoleJobCount{{Label: "queued", N: 1}},
			Notify: newConsoleNotify(postgres.NotificationStatus{State: "subscribed", Since: &now, LastNotificationAt: &now, Notifications: 3,
				Subscriptions: []postgres.SubscriptionExpiry{{Resource: "groups", ExpiresAt: now}, {Resource: "users", ExpiresAt: now}}}),
			Actions: consoleActions{CanSync: true, CanSuspend: true, CanDisconnect: true}},
		&consoleTenantView{Layout: Layout{Title: "Contoso"}, Tenant: bad, StatusLabel: "Failing", Problem: currentProblem(bad, runs),
			Roles: []roleCoverage{{Role: "User.Read.All"}}, MissingRoles: true,
			Notify:  newConsoleNotify(postgres.NotificationStatus{State: "periodic", Reason: "quota", Since: &now}),
			Actions: consoleActions{CanResume: true, WhyNoSync: "Syncing is suspended; resume it to sync."}},
		&consoleTenantView{Layout: Layout{Title: "Contoso"}, Tenant: tn},
	}
}

func jobsSample(now time.Time) postgres.TenantJob {
	return postgres.TenantJob{ID: 7, Kind: "sync_tenant", State: "discarded", Attempt: 8, MaxAttempts: 8, ScheduledAt: now, LastError: "boom"}
}

// signInConsole opens /console as a visitor, signs in as upn on the
// emulator's page and returns where the sign-in lands.
func (br *browser) signInConsole(upn string) (*http.Response, string) {
	br.t.Helper()
	res, body := br.get("/console", true)
	if !strings.Contains(body, `id="signin"`) {
		br.t.Fatalf("/console did not lead to the sign-in form (status %d at %s): %.300s", res.StatusCode, res.Request.URL.Path, body)
	}
	return br.post(res.Request.URL.String(), url.Values{"login": {upn}, "password": {br.b.emu.Seed().DefaultPassword}}, true)
}

// consoleTenant is a row for insertTenant; zero fields get defaults.
type consoleTenant struct {
	ID, Name, Status string
	Domains          []string
	Failures, Users  int
	Roles            []string
}

// insertTenants writes tenants directly, as the worker would have left them.
func insertTenants(t testing.TB, pool *pgxpool.Pool, ts ...consoleTenant) {
	t.Helper()
	for _, tn := range ts {
		if tn.Status == "" {
			tn.Status = "active"
		}
		if tn.Domains == nil {
			tn.Domains = []string{}
		}
		if tn.Roles == nil {
			tn.Roles = []string{"User.Read.All", "GroupMember.Read.All", "Organization.Read.All"}
		}
		_, err := pool.Exec(context.Background(), `
INSERT INTO tenants (id, status, status_reason, display_name, domains, granted_roles, failure_count, user_count,
	consented_at, consented_by, last_synced_at)
VALUES ($1, $2, 'seeded by the test', $3, $4, $5, $6, $7, now(), 'admin@' || ($4::text[])[1], now())`,
			tn.ID, tn.Status, tn.Name, tn.Domains, tn.Roles, tn.Failures, tn.Users)
		if err != nil {
			t.Fatal(err)
		}
	}
}

var (
	tenantRow = regexp.MustCompile(`<tr data-tenant="([^"]+)">`)
	nextLink  = regexp.MustCompile(`href="([^"]+)" id="next-page"`)
	failCell  = regexp.MustCompile(`data-label="Failures" class="num">(\d+)<`)
)

func rowIDs(body string) []string {
	var ids []string
	for _, m := range tenantRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// TestConsoleAccess: visitors are sent to sign in, customers and home-tenant
// users without the Operator role are refused with a reason, operators get
// in, and a server without OPERATOR_TENANT_ID has no console.
func TestConsoleAccess(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	t.Run("anonymous", func(t *testing.T) {
		br := tb.browser(t)
		res, _ := br.get("/console", false)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin?return=/console" {
			t.Errorf("GET /console: %d → %q, want 303 to sign-in", res.StatusCode, res.Header.Get("Location"))
		}
		res, _ = br.get("/console/tenants/"+contosoID, false)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin?return=/console" {
			t.Errorf("GET tenant page: %d → %q, want 303 to sign-in", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := br.post("/console/tenants/"+contosoID+"/sync", url.Values{}, false); res.StatusCode < 400 {
			t.Errorf("anonymous POST: %d", res.StatusCode)
		}
	})
	for _, tt := range []struct {
		name, upn, why string
	}{
		{"customer admin", contosoAdm, "another organization"},
		{"home user without the role", devUPN, "Operator app role"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			br := tb.browser(t)
			res, body := br.signInConsole(tt.upn)
			if res.StatusCode != http.StatusForbidden || res.Request.URL.Path != "/console" {
				t.Fatalf("%s at /console: %d at %s", tt.upn, res.StatusCode, res.Request.URL.Path)
			}
			if !strings.Contains(body, "You cannot use the operator console") || !strings.Contains(body, tt.why) {
				t.Errorf("403 page does not say why (%q): %.600s", tt.why, body)
			}
			if strings.Contains(body, `href="/console"`) {
				t.Error("the header offers the console to a non-operator")
			}
			if res, _ := br.get("/console/tenants/"+contosoID, false); res.StatusCode != http.StatusForbidden {
				t.Errorf("tenant page: %d, want 403", res.StatusCode)
			}
		})
	}
	t.Run("operator", func(t *testing.T) {
		br := tb.browser(t)
		res, body := br.signInConsole(operatorUPN)
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/console" || !strings.Contains(body, "<h1>Operator console</h1>") {
			t.Fatalf("operator at /console: %d at %s: %.300s", res.StatusCode, res.Request.URL.Path, body)
		}
		if !strings.Contains(body, `<a href="/console">Console</a>`) {
			t.Error("the header does not link an operator to the console")
		}
		if res, _ := br.get("/console/tenants/"+contosoID, false); res.StatusCode != http.StatusNotFound {
			t.Errorf("unknown tenant: %d, want 404", res.StatusCode)
		}
		if res, _ := br.get("/console/tenants/not-a-guid", false); res.StatusCode != http.StatusNotFound {
			t.Errorf("malformed tenant ID: %d, want 404", res.StatusCode)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		cfg := tb.srv.cfg
		cfg.OperatorTenantID = ""
		cfg.Metrics = metrics.New()
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console", nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "not configured") {
			t.Errorf("console without OPERATOR_TENANT_ID: %d %.300s", rec.Code, rec.Body.String())
		}
	})
}

// TestConsoleTenantList: search by domain, ID and name, the status filter,
// sorting, walking every page, and refusing changed cursors.
func TestConsoleTenantList(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	pgtest.SeedTenants(t, tb.pool, 400) // about 67 per status: two pages each
	const nwID = "0c9b6a3e-5f0e-4c47-9d2a-7b1c2e3f4a5b"
	insertTenants(t, tb.pool, consoleTenant{ID: nwID, Name: "Northwind Traders", Domains: []string{"northwind.example", "northwind.onmicrosoft.com"}, Users: 77})
	br := tb.browser(t)
	if res, _ := br.signInConsole(operatorUPN); res.StatusCode != http.StatusOK {
		t.Fatalf("operator sign-in: %d", res.StatusCode)
	}
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		res, body := br.get(path, false)
		return res.StatusCode, body
	}

	t.Run("search", func(t *testing.T) {
		var t12 string
		if err := tb.pool.QueryRow(context.Background(), `SELECT md5('tenant12')::uuid::text`).Scan(&t12); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct{ name, q, want string }{
			{"domain", "NorthWind.example", nwID},
			{"id", strings.ToUpper(nwID), nwID},
			{"name", "wind trad", nwID},
			{"seeded domain", "t12.onmicrosoft.com", t12},
		} {
			code, body := get(t, "/console/tenants?q="+url.QueryEscape(tt.q))
			ids := rowIDs(body)
			if code != http.StatusOK || len(ids) != 1 || ids[0] != tt.want {
				t.Errorf("%s search %q: %d, rows %v, want [%s]", tt.name, tt.q, code, ids, tt.want)
			}
		}
		if _, body := get(t, "/console/tenants?q=northwind.example"); !strings.Contains(body, "northwind.example, northwind.onmicrosoft.com") ||
			!strings.Contains(body, `data-label="Users" class="num">77<`) || !strings.Contains(body, ">Active<") {
			t.Errorf("row lacks domains, users or status in words: %.2000s", body)
		}
		if _, body := get(t, "/console/tenants?q=nobody.example"); !strings.Contains(body, `id="no-tenants"`) {
			t.Error("no empty-result message")
		}
	})

	t.Run("filter and sort", func(t *testing.T) {
		code, body := get(t, "/console/tenants?status=failing&sort=failures")
		if code != http.StatusOK || len(rowIDs(body)) != consolePageSize {
			t.Fatalf("failing by failures: %d, %d rows", code, len(rowIDs(body)))
		}
		if n := strings.Count(body, `data-status="failing"`); n != consolePageSize {
			t.Errorf("%d failing badges of %d rows", n, consolePageSize)
		}
		last := 1 << 30
		for _, m := range failCell.FindAllStringSubmatch(body, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			if n > last {
				t.Fatalf("failures not descending: %d after %d", n, last)
			}
			last = n
		}
		for _, bad := range []string{"/console/tenants?status=happy", "/console/tenants?sort=size%3Bdrop"} {
			if code, _ := get(t, bad); code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", bad, code)
			}
		}
	})

	t.Run("pages", func(t *testing.T) {
		var want int
		if err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM tenants WHERE status = 'active'`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		path, pages := "/console/tenants?status=active&sort=last_sync", 0
		var second string
		for path != "" {
			code, body := get(t, path)
			if code != http.StatusOK {
				t.Fatalf("page %d: %d", pages, code)
			}
			for _, id := range rowIDs(body) {
				if seen[id] {
					t.Fatalf("tenant %s on two pages", id)
				}
				seen[id] = true
			}
			if pages > 0 && !strings.Contains(body, `id="first-page"`) {
				t.Error("a later page lacks the link to the first")
			}
			path = ""
			if m := nextLink.FindStringSubmatch(body); m != nil {
				path = htmlUnescape(m[1])
				if second == "" {
					second = path
				}
			}
			pages++
		}
		if len(seen) != want || pages != (want+consolePageSize-1)/consolePageSize {
			t.Errorf("walked %d tenants in %d pages, want %d", len(seen), pages, want)
		}
		u, _ := url.Parse(second)
		cur := u.Query().Get("after")
		for name, q := range map[string]url.Values{
			"tampered":        {"status": {"active"}, "sort": {"last_sync"}, "after": {"x" + cur}},
			"forged payload":  {"status": {"active"}, "sort": {"last_sync"}, "after": {"eyJzIjoibGFzdF9zeW5jIiwiayI6IjEiLCJpIjoiMSJ9." + strings.SplitN(cur, ".", 2)[1]}},
			"no signature":    {"status": {"active"}, "sort": {"last_sync"}, "after": {strings.SplitN(cur, ".", 2)[0]}},
			"garbage":         {"after": {"%%%"}},
			"another listing": {"status": {"active"}, "sort": {"name"}, "after": {cur}},
		} {
			code, body := get(t, "/console/tenants?"+q.Encode())
			if code != http.StatusBadRequest || !strings.Contains(body, "This page link is not valid") {
				t.Errorf("%s cursor: %d, want the 400 page", name, code)
			}
		}
		// The same cursor is refused in another operator's session.
		other := tb.browser(t)
		other.signInConsole(operatorUPN)
		if res, _ := other.get(second, false); res.StatusCode != http.StatusBadRequest {
			t.Errorf("cursor of another session: %d, want 400", res.StatusCode)
		}
	})
}

// seedHistory gives a tenant events, finished sync runs (the latest one
// failed with a Graph code) and River jobs, one of them failed.
func seedHistory(t *testing.T, tb *testBundle, tid string) {
	t.Helper()
	ctx := context.Background()
	_, err := tb.pool.Exec(ctx, `
INSERT INTO tenant_events (tenant_id, at, kind, from_status, to_status, reason, actor) VALUES
	($1, now() - interval '2 hours', 'consented', '', 'pending', 'admin consent granted', 'admin@contoso.example'),
	($1, now() - interval '119 minutes', 'status_changed', 'pending', 'active', 'consent verified', 'worker')`, tid)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tb.pool.Exec(ctx, `
INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, pages, upserts, deletes, requests, throttled_waits, throttled_ms, outcome, error, error_code)
SELECT $1, CASE WHEN i = 1 THEN 'full' ELSE 'delta' END, now() - (7 - i) * interval '10 minutes',
	now() - (7 - i) * interval '10 minutes' + i * interval '700 milliseconds', i, i * 10, i % 2, i * 2, i % 3, (i % 3) * 1000,
	CASE WHEN i = 6 THEN 'failed' ELSE 'succeeded' END,
	CASE WHEN i = 6 THEN 'graph: forbidden (HTTP 403 Authorization_RequestDenied): Insufficient privileges' ELSE '' END,
	CASE WHEN i = 6 THEN 'Authorization_RequestDenied' ELSE '' END
FROM generate_series(1, 6) AS i`, tid)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := queue.NewInserter(tb.pool)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ins.Insert(ctx, queue.PurgeTenantArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tb.pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', attempt = 10, finalized_at = now(),
		errors = ARRAY['{"at":"2026-11-23T10:00:00Z","attempt":10,"error":"purge: database went away"}'::jsonb] WHERE id = $1`, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
}

// TestConsoleTenantShow: the tenant page shows history, consent, runs with
// their chart, the current error with its code, counts and jobs.
func TestConsoleTenantShow(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	insertTenants(t, tb.pool, consoleTenant{ID: contosoID, Name: "Contoso", Status: "failing", Domains: []string{"contoso.example"},
		Roles: []string{"User.Read.All", "Group.Read.All"}, Failures: 2})
	seedHistory(t, tb, contosoID)
	br := tb.browser(t)
	br.signInConsole(operatorUPN)
	res, body := br.get("/console/tenants/"+contosoID, false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("tenant page: %d %.300s", res.StatusCode, body)
	}
	for _, want := range []string{
		"<h1>Contoso</h1>", `data-status="failing"`,
		// history with reasons and actors
		"consent verified", "by worker", "admin consent granted", "by admin@contoso.example",
		// consent: Group.Read.All covers GroupMember.Read.All; Organization.Read.All is missing
		`<code>GroupMember.Read.All</code></th>`, "some are missing", `<span class="badge bad">missing</span>`,
		// the current error in words, with the raw code
		`id="problem"`, "the app lacks a permission it needs", `<code id="problem-code">Authorization_RequestDenied</code>`,
		"Insufficient privileges",
		// runs and chart
		`id="runs"`, `data-kind="full"`, "4.2 s", `<svg class="chart" id="sync-chart" role="img"`, "<title id=\"chart-title\">",
		"<desc id=\"chart-desc\">The last 6 finished sync runs", `class="bar fail"`,
		// jobs
		`id="jobs"`, `data-state="discarded"`, "purge: database went away", "0 queued · 0 running · 0 retrying · 1 failed",
		// actions for a failing tenant
		`id="sync-now"`, `id="full-resync"`, `id="suspend"`, `id="disconnect"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("tenant page lacks %q", want)
		}
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<script") {
		t.Error("inline style or script; the CSP forbids both")
	}
	if got := strings.Count(body, "<rect "); got != 12 {
		t.Errorf("%d bars, want 2 × 6", got)
	}
}

// TestConsoleActions: each action needs the CSRF token, writes its audit
// event naming the operator and its job, and a conflict is a clear 409.
func TestConsoleActions(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	const pendingID = "5d6c2b1a-0f9e-4d8c-b7a6-123456789abc"
	insertTenants(t, tb.pool,
		consoleTenant{ID: contosoID, Name: "Contoso", Domains: []string{"contoso.example"}},
		consoleTenant{ID: pendingID, Name: "Pending Ltd", Status: "pending", Domains: []string{"pending.example"}})
	br := tb.browser(t)
	br.signInConsole(operatorUPN)
	page := "/console/tenants/" + contosoID
	_, body := br.get(page, false)
	token := csrfOf(t, body)

	type event struct{ Kind, To, Reason, Actor string }
	events := func() []event {
		rows, err := tb.pool.Query(context.Background(), `SELECT kind, to_status, reason, actor FROM tenant_events WHERE tenant_id = $1 ORDER BY id`, contosoID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []event
		for rows.Next() {
			var e event
			if err := rows.Scan(&e.Kind, &e.To, &e.Reason, &e.Actor); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	jobArgs := func() []string {
		rows, err := tb.pool.Query(context.Background(), `SELECT kind || ' ' || args::text FROM river_job ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		return br.post(path, form, false)
	}

	// Without the CSRF token nothing is written.
	for _, p := range []string{"/sync", "/suspend", "/resume", "/disconnect"} {
		res, _ := post(page+p, url.Values{"confirm": {"yes"}, "full": {"1"}})
		if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without CSRF: %d", p, res.StatusCode)
		}
		if res, _ := post(page+p, url.Values{"_csrf": {"forged-token"}, "confirm": {"yes"}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with a wrong CSRF token: %d, want 403", p, res.StatusCode)
		}
	}
	if w := countWritten(t, tb.pool); w.Events != 0 || w.Jobs != 0 {
		t.Fatalf("written without CSRF: %+v", w)
	}

	step := func(name, path string, form url.Values, wantEvent event, wantJob string, wantNotice string) {
		t.Helper()
		form.Set("_csrf", token)
		nEv, nJobs := len(events()), len(jobArgs())
		res, _ := post(page+path, form)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d, want 303", name, res.StatusCode)
		}
		// Post/redirect/get: the redirect goes to the tenant's plain URL;
		// the notice shows once, and a reload shows the page without it.
		if loc := res.Header.Get("Location"); loc != page {
			t.Errorf("%s: redirect to %q, want %q", name, loc, page)
		}
		_, body := br.get(res.Header.Get("Location"), false)
		if !strings.Contains(body, wantNotice) {
			t.Errorf("%s: page lacks notice %q", name, wantNotice)
		}
		if _, body := br.get(page, false); strings.Contains(body, `id="notice"`) {
			t.Errorf("%s: the notice shows again on reload", name)
		}
		evs := events()
		if len(evs) != nEv+1 || evs[len(evs)-1] != wantEvent {
			t.Errorf("%s: events %+v, want one more: %+v", name, evs[nEv:], wantEvent)
		}
		js := jobArgs()
		switch {
		case wantJob == "" && len(js) != nJobs:
			t.Errorf("%s: jobs %v, want none added", name, js[nJobs:])
		case wantJob != "" && (len(js) != nJobs+1 || js[len(js)-1] != wantJob):
			t.Errorf("%s: jobs %v, want %q added", name, js[nJobs:], wantJob)
		}
	}
	step("sync now", "/sync", url.Values{}, event{"sync_requested", "", "sync now", operatorUPN},
		`sync_tenant {"tenant_id": "`+contosoID+`"}`, "Sync requested")
	// A sync is unique per tenant while queued: let the first one finish.
	if _, err := tb.pool.Exec(context.Background(), `UPDATE river_job SET state = 'completed', finalized_at = now()`); err != nil {
		t.Fatal(err)
	}
	step("full resync", "/sync", url.Values{"full": {"1"}}, event{"sync_requested", "", "full resync", operatorUPN},
		`sync_tenant {"full": true, "tenant_id": "`+contosoID+`"}`, "Full resync requested")
	step("suspend", "/suspend", url.Values{}, event{"sync_suspended", "", "", operatorUPN}, "", "Syncing is suspended")
	if _, body := br.get(page, false); !strings.Contains(body, `id="resume"`) || strings.Contains(body, `id="sync-now"`) || !strings.Contains(body, `id="suspended"`) {
		t.Error("a suspended tenant's page should offer resume, not sync")
	}
	// Syncing a suspended tenant is a conflict, shown in words.
	res, body := post(page+"/sync", url.Values{"_csrf": {token}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "is suspended; resume it first.") {
		t.Errorf("sync while suspended: %d %.500s", res.StatusCode, body)
	}
	step("resume", "/resume", url.Values{}, event{"sync_resumed", "", "", operatorUPN}, "", "Syncing is resumed")

	// Disconnect asks first; only the confirmation writes.
	nEv, nJobs := len(events()), len(jobArgs())
	res, body = post(page+"/disconnect", url.Values{"_csrf": {token}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-disconnect"`) || !strings.Contains(body, "Disconnect Contoso and purge its data?") {
		t.Fatalf("disconnect first step: %d %.300s", res.StatusCode, body)
	}
	if len(events()) != nEv || len(jobArgs()) != nJobs {
		t.Fatal("the confirmation step wrote something")
	}
	step("disconnect", "/disconnect", url.Values{"confirm": {"yes"}},
		event{"status_changed", "disconnected", "disconnected by an operator", operatorUPN},
		`purge_tenant {"tenant_id": "`+contosoID+`"}`, "The tenant is disconnected")
	if res, body := post(page+"/disconnect", url.Values{"_csrf": {token}, "confirm": {"yes"}}); res.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "is already disconnected.") {
		t.Errorf("second disconnect: %d", res.StatusCode)
	}

	// A pending tenant cannot sync: a clear 409, nothing written.
	w := countWritten(t, tb.pool)
	res, body = post("/console/tenants/"+pendingID+"/sync", url.Values{"_csrf": {token}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "is pending; only active or failing tenants sync.") {
		t.Errorf("sync of a pending tenant: %d %.500s", res.StatusCode, body)
	}
	if got := countWritten(t, tb.pool); got != w {
		t.Errorf("conflict wrote %+v → %+v", w, got)
	}
	if res, _ := post("/console/tenants/0b3e8d2c-1111-2222-3333-444455556666/sync", url.Values{"_csrf": {token}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("sync of an unknown tenant: %d, want 404", res.StatusCode)
	}

	// A customer admin with a valid CSRF token of their own session is refused.
	cust := tb.browser(t)
	cust.signIn(contosoAdm)
	_, cbody := cust.get("/tenant", false)
	w = countWritten(t, tb.pool)
	if res, _ := cust.post("/console/tenants/"+pendingID+"/suspend", url.Values{"_csrf": {csrfOf(t, cbody)}}, false); res.StatusCode != http.StatusForbidden {
		t.Errorf("customer admin's POST: %d, want 403", res.StatusCode)
	}
	if got := countWritten(t, tb.pool); got != w {
		t.Errorf("refused POST wrote %+v → %+v", w, got)
	}
}
