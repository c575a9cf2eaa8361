package webapp

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// consoleOverviewSamplePages are the overview's and the needs-action
// page's views for TestRenderEveryPage: a busy fleet and an empty one.
func consoleOverviewSamplePages(now time.Time, tn domain.Tenant) map[string][]page {
	bad := tn
	bad.Status, bad.StatusReason = domain.TenantConsentRevoked, "consent removed (AADSTS700016)"
	o := postgres.FleetOverview{
		ByStatus:  map[domain.TenantStatus]int{domain.TenantActive: 3, domain.TenantConsentRevoked: 1},
		Attention: []domain.Tenant{bad},
		Lag: postgres.SyncLag{Tenants: 3, P50: time.Hour, P95: 3 * time.Hour,
			Worst: []postgres.LaggingTenant{{ID: tn.ID, DisplayName: "Contoso", Lag: 3 * time.Hour}, {ID: tn.ID, Lag: time.Minute}}},
		Since: now.Truncate(time.Hour).Add(-23 * time.Hour),
		Runs:  postgres.RunTotals{RunHour: postgres.RunHour{Succeeded: 5, Failed: 1, Throttled: 1}, ThrottledTenants: 1},
		Queue: []postgres.QueueDepth{{Kind: "sync_tenant", Available: 2, Running: 1}},
	}
	for i := range 24 {
		o.Hours = append(o.Hours, postgres.RunHour{Hour: o.Since.Add(time.Duration(i) * time.Hour), Succeeded: i % 3, Failed: i % 2, Snoozed: i % 5, Running: i / 23})
	}
	empty := postgres.FleetOverview{Since: o.Since, Hours: make([]postgres.RunHour, 24)}
	return map[string][]page{
		"console_overview": {newOverviewView(o, []postgres.NotificationCount{{State: "subscribed", N: 2}, {State: "periodic", Reason: "quota", N: 1},
			{State: "periodic", Reason: "off", N: 1}}), newOverviewView(empty, nil)},
		"console_needs_action": {
			&consoleNeedsActionView{Layout: Layout{Title: "x"}, Total: 3, Lists: []overviewStatus{{Label: "Consent revoked", N: 3, URL: tenantListURL(domain.TenantConsentRevoked)}},
				Rows: []needsActionRow{{ID: tn.ID, Name: "Contoso", Status: bad.Status, Label: "Consent revoked", Words: bad.Status.Describe(),
					Reason: bad.StatusReason, Since: now, Link: "https://portal.example/connect?tenant=" + tn.ID}}},
			&consoleNeedsActionView{Layout: Layout{Title: "x"}},
		},
	}
}

// Tenants of TestConsoleOverview, one or more per status.
const (
	ovAlpha   = "a0000000-0000-4000-8000-000000000001" // active, synced 10 min ago
	ovBeta    = "a0000000-0000-4000-8000-000000000002" // active, synced 3 h ago
	ovGamma   = "a0000000-0000-4000-8000-000000000003" // active for 2 h, never synced
	ovDelta   = "a0000000-0000-4000-8000-000000000004" // active but suspended, synced 50 h ago
	ovPending = "b0000000-0000-4000-8000-000000000001"
	ovFailing = "c0000000-0000-4000-8000-000000000001" // failing for 30 min, throttled now
	ovRevoked = "d0000000-0000-4000-8000-000000000001" // consent revoked 5 min ago
	ovMissing = "e0000000-0000-4000-8000-000000000001" // permissions missing for 1 h
	ovGone    = "f0000000-0000-4000-8000-000000000001" // disconnected
)

var (
	overviewTile   = regexp.MustCompile(`<li data-status="([a-z_]+)"><a href="([^"]+)"><span class="n">(\d+)</span>`)
	attentionRow   = regexp.MustCompile(`(?s)<tr data-tenant="([^"]+)" data-status="[a-z_]+">.*?data-label="Reason">([^<]*)<`)
	worstRow       = regexp.MustCompile(`(?s)<tr data-tenant="([^"]+)">\s*<th scope="row" data-label="Name"><a href="/console/tenants/[^"]+">[^<]+</a></th>\s*<td data-label="Last sync">[^<]*</td>\s*<td data-label="Lag" class="num">([^<]+)<`)
	definitionText = regexp.MustCompile(`<dd id="(runs-[a-z]+)">([^<]+)<`)
	copyLink       = regexp.MustCompile(`<input id="link-([^"]+)" class="copy" type="text" readonly value="([^"]+)">`)
)

// TestConsoleOverview: with tenants in every status, sync runs of every
// outcome and queued jobs, the overview counts each status with a link to
// its list, lists who needs attention with the reason, most recent first,
// states the lag percentiles and the worst tenants, the runs of the last
// 24 hours, throttling, refused tokens and the queue; status counts follow
// status changes and deletions; the needs-action page gives each tenant's
// re-consent link; old list bookmarks are redirected.
func TestConsoleOverview(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	now := tb.clock.Now().UTC()
	for _, tn := range []struct {
		id, name, status, reason string
		changed                  time.Duration
		synced                   *time.Duration
		suspended                bool
	}{
		{ovAlpha, "Alpha", "active", "consent verified", 48 * time.Hour, new(10 * time.Minute), false},
		{ovBeta, "Beta", "active", "consent verified", 48 * time.Hour, new(3 * time.Hour), false},
		{ovGamma, "Gamma", "active", "consent verified", 2 * time.Hour, nil, false},
		{ovDelta, "Delta", "active", "consent verified", 90 * time.Hour, new(50 * time.Hour), true},
		{ovPending, "Pending Co", "pending", "consented", time.Minute, nil, false},
		{ovFailing, "Failing Co", "failing", "sync failed (TooManyRequests)", 30 * time.Minute, new(40 * time.Minute), false},
		{ovRevoked, "Revoked Co", "consent_revoked", "consent removed (AADSTS700016)", 5 * time.Minute, new(6 * time.Minute), false},
		{ovMissing, "Missing Co", "insufficient_permissions", "GroupMember.Read.All not granted", time.Hour, nil, false},
		{ovGone, "Gone Co", "disconnected", "disconnected by the customer", 72 * time.Hour, nil, false},
	} {
		var synced *time.Time
		if tn.synced != nil {
			synced = new(now.Add(-*tn.synced))
		}
		if _, err := tb.pool.Exec(ctx, `
INSERT INTO tenants (id, status, status_reason, status_changed_at, display_name, consented_by, last_synced_at, sync_suspended)
VALUES ($1, $2, $3, $4, $5, 'admin@' || $5 || '.example', $6, $7)`,
			tn.id, tn.status, tn.reason, now.Add(-tn.changed), tn.name, synced, tn.suspended); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct {
		tenant, outcome, code string
		ago                   time.Duration
		waits                 int
	}{
		{ovAlpha, "succeeded", "", 30 * time.Minute, 0},
		{ovBeta, "succeeded", "", 3 * time.Hour, 2},             // waited on a Retry-After: throttled
		{ovFailing, "snoozed", "TooManyRequests", time.Hour, 0}, // paused by one: throttled
		{ovRevoked, "failed", "AADSTS700016", 2 * time.Hour, 0}, // token refused
		{ovFailing, "failed", "generalException", 90 * time.Minute, 0},
		{ovAlpha, "succeeded", "AADSTS700016", 30 * time.Hour, 0}, // before the window
	} {
		if _, err := tb.pool.Exec(ctx, `INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, outcome, error_code, throttled_waits)
VALUES ($1, 'delta', $2, $2, $3, $4, $5)`, r.tenant, now.Add(-r.ago), r.outcome, r.code, r.waits); err != nil {
			t.Fatal(err)
		}
	}
	// A run of Gamma, started and then finished, as the worker writes it.
	runID, err := tb.store.SyncRunStart(ctx, ovGamma, domain.SyncFull, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `UPDATE tenants SET graph_throttled_until = $2 WHERE id = $1`, ovFailing, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO river_job (kind, args, max_attempts, state, scheduled_at, finalized_at)
VALUES ('sync_tenant', '{}', 25, 'available', now(), NULL), ('sync_tenant', '{}', 25, 'available', now(), NULL),
	('sync_tenant', '{}', 25, 'retryable', now(), NULL), ('verify_tenant', '{}', 25, 'scheduled', now() + interval '1 minute', NULL),
	('purge_tenant', '{}', 25, 'completed', now(), now())`); err != nil {
		t.Fatal(err)
	}

	br := tb.browser(t)
	if res, _ := br.signInConsole(operatorUPN); res.StatusCode != http.StatusOK {
		t.Fatalf("operator sign-in: %d", res.StatusCode)
	}
	overview := func(t *testing.T) string {
		t.Helper()
		res, body := br.get("/console", false)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Operator console</h1>") {
			t.Fatalf("/console: %d: %.500s", res.StatusCode, body)
		}
		return body
	}
	tiles := func(body string) map[string]string {
		out := map[string]string{}
		for _, m := range overviewTile.FindAllStringSubmatch(body, -1) {
			out[m[1]] = m[3] + " " + html.UnescapeString(m[2])
		}
		return out
	}
	body := overview(t)

	t.Run("status counts link to the lists", func(t *testing.T) {
		want := map[string]string{
			"pending": "1 /console/tenants?status=pending", "active": "4 /console/tenants?status=active",
			"failing": "1 /console/tenants?status=failing", "consent_revoked": "1 /console/tenants?status=consent_revoked",
			"insufficient_permissions": "1 /console/tenants?status=insufficient_permissions",
			"disconnected":             "1 /console/tenants?status=disconnected",
		}
		if d := cmp.Diff(want, tiles(body)); d != "" {
			t.Errorf("tiles (-want +got):\n%s", d)
		}
		if !strings.Contains(body, "9 tenants.") || !strings.Contains(body, `href="/console/needs-action" id="needs-action-link">2 need their customer's action`) {
			t.Error("the lead does not total 9 tenants or link the 2 needing their admin")
		}
	})
	t.Run("attention, most recent first, with reasons", func(t *testing.T) {
		var got [][2]string
		for _, m := range attentionRow.FindAllStringSubmatch(body, -1) {
			got = append(got, [2]string{m[1], m[2]})
		}
		want := [][2]string{
			{ovRevoked, "consent removed (AADSTS700016)"},
			{ovFailing, "sync failed (TooManyRequests)"},
			{ovMissing, "GroupMember.Read.All not granted"},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("attention rows (-want +got):\n%s", d)
		}
		since := now.Add(-5 * time.Minute).Format(time.RFC3339)
		if !strings.Contains(body, `<time datetime="`+since+`">`) {
			t.Errorf("the revoked tenant's row does not say since %s", since)
		}
		for _, link := range []string{`href="/console/tenants?status=failing">Failing (1)`, `href="/console/tenants?status=consent_revoked">Consent revoked (1)`,
			`href="/console/tenants?status=insufficient_permissions">Missing permissions (1)`} {
			if !strings.Contains(body, link) {
				t.Errorf("no full-list link %s", link)
			}
		}
	})
	t.Run("lag", func(t *testing.T) {
		// Alpha 10 min, Gamma 2 h (since it became active), Beta 3 h;
		// Delta is suspended and not counted.
		for id, want := range map[string]string{"lag-p50": "2 h 0 min", "lag-p95": "3 h 0 min"} {
			if !strings.Contains(body, `id="`+id+`">`+want+`<`) {
				t.Errorf("%s is not %s", id, want)
			}
		}
		if !strings.Contains(body, "of the 3 active tenants") {
			t.Error("the lag is not said to cover 3 tenants")
		}
		var got [][2]string
		for _, m := range worstRow.FindAllStringSubmatch(body, -1) {
			got = append(got, [2]string{m[1], m[2]})
		}
		want := [][2]string{{ovBeta, "3 h 0 min"}, {ovGamma, "2 h 0 min"}, {ovAlpha, "10 min"}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("worst lag (-want +got):\n%s", d)
		}
	})
	t.Run("runs, throttling, tokens and queue", func(t *testing.T) {
		got := map[string]string{}
		for _, m := range definitionText.FindAllStringSubmatch(body, -1) {
			got[m[1]] = html.UnescapeString(m[2])
		}
		since := now.Truncate(time.Hour).Add(-23 * time.Hour).Format("2 Jan 2006, 15:04 UTC")
		want := map[string]string{
			"runs-total":     "6 since " + since,
			"runs-failed":    "2",
			"runs-throttled": "2 runs of 2 tenants; 1 tenants are waiting out a Retry-After now",
			"runs-token":     "1 runs of 1 tenants",
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("run figures (-want +got):\n%s", d)
		}
		if n := strings.Count(body, `<g><title>`); n != 24 {
			t.Errorf("chart has %d hourly bars, want 24", n)
		}
		if !strings.Contains(body, "1 running") || !strings.Contains(body, "6 sync runs started") {
			t.Error("the chart does not show the running run or the total in its text")
		}
		for _, row := range []string{
			`<tr data-kind="sync_tenant"><th scope="row" data-label="Kind"><code>sync_tenant</code></th>
        <td data-label="Available" class="num">2</td><td data-label="Scheduled" class="num">0</td>
        <td data-label="Retrying" class="num">1</td>`,
			`<tr data-kind="verify_tenant"><th scope="row" data-label="Kind"><code>verify_tenant</code></th>
        <td data-label="Available" class="num">0</td><td data-label="Scheduled" class="num">1</td>`,
		} {
			if !strings.Contains(body, row) {
				t.Errorf("queue lacks %s", row)
			}
		}
		if strings.Contains(body, "purge_tenant") {
			t.Error("a completed job is counted in the queue")
		}
	})

	t.Run("counts follow changes", func(t *testing.T) {
		run := domain.SyncRun{ID: runID, TenantID: ovGamma, Kind: domain.SyncFull, Outcome: domain.SyncSucceeded}
		if _, err := tb.store.SyncRunFinish(ctx, run); err != nil {
			t.Fatal(err)
		}
		if err := tb.store.TenantSetStatus(ctx, ovMissing, domain.TenantPending, "consented again", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, ovGone); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.pool.Exec(ctx, `UPDATE tenants SET display_name = display_name || ' Ltd'`); err != nil {
			t.Fatal(err) // no status moves: no count may change
		}
		body := overview(t)
		want := map[string]string{}
		rows, err := tb.pool.Query(ctx, `SELECT s, (SELECT count(*) FROM tenants WHERE status = s) FROM unnest($1::text[]) AS s`, domain.TenantStatuses)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var (
				s string
				n int
			)
			if err := rows.Scan(&s, &n); err != nil {
				t.Fatal(err)
			}
			want[s] = strconv.Itoa(n) + " " + tenantListURL(domain.TenantStatus(s))
		}
		if d := cmp.Diff(want, tiles(body)); d != "" {
			t.Errorf("tiles after changes (-counted +shown):\n%s", d)
		}
		if want["pending"] != "2 /console/tenants?status=pending" || want["disconnected"] != "0 /console/tenants?status=disconnected" {
			t.Errorf("the changes did not happen: %v", want)
		}
		if strings.Contains(body, "1 running") || !strings.Contains(body, "6 sync runs started") || !strings.Contains(body, `id="runs-failed">2<`) {
			t.Error("the finished run is still running on the chart, or the totals moved")
		}
	})

	t.Run("needs customer action", func(t *testing.T) {
		res, page := br.get("/console/needs-action", false)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("needs-action: %d", res.StatusCode)
		}
		got := map[string]string{}
		for _, m := range copyLink.FindAllStringSubmatch(page, -1) {
			got[m[1]] = html.UnescapeString(m[2])
		}
		// Missing Co consented again above; Revoked Co still needs its admin.
		want := map[string]string{ovRevoked: AdminLink(tb.srv.cfg.PublicBaseURL)(ovRevoked)}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("re-consent links (-want +got):\n%s", d)
		}
		if !strings.HasSuffix(want[ovRevoked], "/connect?tenant="+ovRevoked) {
			t.Errorf("link %q is not the portal's connect link", want[ovRevoked])
		}
		for _, s := range []string{"consent removed (AADSTS700016)", "admin@Revoked Co.example", `<label for="link-` + ovRevoked + `">`} {
			if !strings.Contains(html.UnescapeString(page), s) {
				t.Errorf("needs-action page lacks %q", s)
			}
		}
	})

	t.Run("old bookmarks of the list", func(t *testing.T) {
		for path, want := range map[string]string{
			"/console?status=failing&sort=failures": "/console/tenants?status=failing&sort=failures",
			"/console?q=contoso.example":            "/console/tenants?q=contoso.example",
		} {
			res, _ := br.get(path, false)
			if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
				t.Errorf("%s: %d → %q, want 301 → %s", path, res.StatusCode, res.Header.Get("Location"), want)
			}
		}
	})
}
