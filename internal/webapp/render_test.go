package webapp

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
)

// samplePages gives every page template at least one typed view model,
// several for pages with branches.
func samplePages() map[string][]page {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tn := domain.Tenant{ID: contosoID, Status: domain.TenantActive, DisplayName: "Contoso", ConsentedAt: &now,
		ConsentedBy: contosoAdm, LastSyncedAt: &now}
	run := domain.SyncRun{ID: 1, TenantID: contosoID, Kind: domain.SyncDelta, StartedAt: now, Pages: 3, Upserts: 40,
		Outcome: domain.SyncRunning}
	tenantPages := []page{&tenantView{Layout: Layout{Title: "Your organization"}}}
	for _, st := range domain.TenantStatuses {
		t := tn
		t.Status = st
		tenantPages = append(tenantPages, &tenantView{Layout: Layout{Title: "Your organization", RefreshSeconds: 5}, Connected: true,
			Tenant: t, Heading: t.DisplayName, Status: st.Describe(), StatusLabel: statusLabel[st], StatusClass: statusClass[st], Reconnect: st.NeedsAdmin(),
			Disconnected: st == domain.TenantDisconnected, IsAdmin: true, Counts: domain.DirectoryCounts{Users: 50, Groups: 5},
			LastRun: &run, Running: true, Events: []domain.TenantEvent{{At: now, Kind: "consented", ToStatus: "pending", Reason: "r", Actor: contosoAdm}}})
	}
	var connectPages []page
	for _, p := range []onboarding.Problem{onboarding.ProblemState, onboarding.ProblemNotSignedIn, onboarding.ProblemCancelled,
		onboarding.ProblemNeedsAdmin, onboarding.ProblemOtherOrg, onboarding.ProblemNotConsented, onboarding.ProblemMalformed,
		onboarding.ProblemPersonalAccount, onboarding.ProblemEntra, onboarding.ProblemNotAdminToRemove, onboarding.ProblemSwitchAccount} {
		connectPages = append(connectPages, &connectErrorView{Layout: Layout{Title: "Not connected"}, Problem: p,
			Code: "access_denied", Description: "AADSTS65004: declined", AdminLink: "https://portal.example/connect?tenant=" + contosoID,
			SignedInTenant: contosoID, LinkTenant: fabrikamID, SwitchLink: "/signin?account=select&return=%2Fconnect"})
	}
	connectPages = append(connectPages, &connectErrorView{Layout: Layout{Title: "Not connected"}, Problem: onboarding.ProblemNeedsAdmin,
		AdminLink: "https://portal.example/connect?tenant=" + contosoID, SignedInTenant: contosoID, NoDirectoryRoles: true})
	all := map[string][]page{
		"landing":       {&landingView{Layout: Layout{Title: "Connect"}}},
		"tenant":        tenantPages,
		"connect_error": connectPages,
		"signin_error": {&signinErrorView{Layout: Layout{Title: "x"}, Personal: true}, &signinErrorView{Layout: Layout{Title: "x"}, Expired: true},
			&signinErrorView{Layout: Layout{Title: "x"}, Code: "access_denied", Description: "no"}},
		"disconnect_confirm": {&disconnectConfirmView{Layout: Layout{Title: "x"}, Tenant: tn}},
		"disconnect_done":    {&disconnectDoneView{Layout: Layout{Title: "x"}, Tenant: tn, ClientID: "9aeffa6e-8ae6-492f-8c6d-a12d870c10f0"}},
		"error":              {&errorView{Layout: Layout{Title: "Not found"}, Status: 404, Message: "m", SignIn: true}},
		"console_tenants":    consoleSamplePages(now, tn, run),
		"console_tenant":     consoleTenantSamplePages(now, tn, run),
		"console_webhooks":   consoleWebhookSamplePages(now),
		"console_confirm":    {&consoleConfirmView{Layout: Layout{Title: "x"}, Tenant: tn, Counts: domain.DirectoryCounts{Users: 50}}},
		"console_message": {
			&consoleMessageView{Layout: Layout{Title: "x"}, Status: 403, Heading: "h", Message: "m", Why: []string{"a", "b"}, SwitchAccount: true, BackURL: "/tenant", BackText: "b"},
			&consoleMessageView{Layout: Layout{Title: "x"}, Status: 404, Heading: "h", Message: "m", Detail: "d"},
		},
	}
	for name, pages := range consoleOverviewSamplePages(now, tn) {
		all[name] = pages
	}
	return all
}

// TestRenderEveryPage renders each page (signed in, through the whole
// middleware chain) and checks the layout, the CSRF field of forms and the
// absence of any script.
func TestRenderEveryPage(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	samples := samplePages()
	for _, name := range pageNames {
		if len(samples[name]) == 0 {
			t.Errorf("page %s has no sample view model", name)
		}
	}
	tb.srv.Echo().GET("/_test/render/:page/:i", func(c echo.Context) error {
		list := samples[c.Param("page")]
		i := 0
		for _, ch := range c.Param("i") {
			i = i*10 + int(ch-'0')
		}
		return tb.srv.render(c, http.StatusOK, c.Param("page"), list[i])
	})
	br := tb.browser(t)
	br.signIn(contosoAdm)
	names := make([]string, 0, len(samples))
	for n := range samples {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		for i := range samples[name] {
			res, body := br.get("/_test/render/"+name+"/"+itoa(i), false)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s[%d]: status %d: %.300s", name, i, res.StatusCode, body)
				continue
			}
			for _, want := range []string{"<!doctype html>", `<html lang="en">`, `name="viewport"`, "/static/app.css", `<main id="main"`, contosoAdm} {
				if !strings.Contains(body, want) {
					t.Errorf("%s[%d] lacks %q", name, i, want)
				}
			}
			// No inline script: the one script there is comes from /static.
			if strings.Count(body, "<script") != strings.Count(body, `<script src="/static/live.js" defer></script>`) {
				t.Errorf("%s[%d] has an inline script", name, i)
			}
			if strings.Count(body, `method="post"`) != strings.Count(body, `name="_csrf" value="`) {
				t.Errorf("%s[%d]: a POST form lacks its CSRF field", name, i)
			}
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Every status has its word for the badges and histories of portal and
// console alike, and statusWord uses it.
func TestStatusWords(t *testing.T) {
	t.Parallel()
	word := funcs["statusWord"].(func(string) string)
	for _, st := range domain.TenantStatuses {
		l := statusLabel[st]
		if l == "" || l == string(st) || word(string(st)) != l {
			t.Errorf("status %s: label %q, statusWord %q", st, l, word(string(st)))
		}
	}
	if w := word("something_new"); w != "something_new" {
		t.Errorf("an unknown status reads %q, want it as stored", w)
	}
}
