package webapp

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// statesOf counts the connect states bound to the browser's session.
func statesOf(t *testing.T, br *browser) int {
	t.Helper()
	h := sha256.Sum256([]byte(br.sessionUser().Binding))
	var n int
	if err := br.b.pool.QueryRow(context.Background(), `SELECT count(*) FROM connect_states WHERE binding_hash = $1`, h[:]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConnectNeedsAdminRole (issue #10 item 1): Global and Privileged Role
// Administrators connect; Cloud Application Administrators, Application
// Administrators and plain users get the needs-admin page at /connect with
// no state kept, and a success callback they forge with a state of their
// own session is refused with nothing written.
func TestConnectNeedsAdminRole(t *testing.T) {
	t.Parallel()
	for _, upn := range []string{contosoAdm, contosoPRA} {
		t.Run(upn, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			br := tb.browser(t)
			br.signIn(upn)
			res, body := br.get("/connect/callback?"+successQuery(br.connectState(), contosoID).Encode(), false)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/tenant?connected=1" {
				t.Fatalf("callback: %d %s: %.500s", res.StatusCode, res.Header.Get("Location"), body)
			}
			tn, err := tb.store.TenantGet(context.Background(), contosoID)
			if err != nil || tn.Status != domain.TenantPending || tn.ConsentedBy != upn {
				t.Errorf("tenant %+v %v", tn, err)
			}
		})
	}

	tb := setup(t)
	for _, upn := range []string{contosoCloudApp, contosoAppAdm, contosoUser} {
		t.Run(upn, func(t *testing.T) {
			t.Parallel()
			br := tb.browser(t)
			br.signIn(upn)
			res, body := br.get("/connect", false)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "An administrator needs to approve this") {
				t.Fatalf("/connect: %d %s: %.500s", res.StatusCode, res.Header.Get("Location"), body)
			}
			if link := htmlUnescape(regexpFind(`id="admin-link"[^>]*value="([^"]*)"`, body)); link != tb.base+"/connect?tenant="+contosoID {
				t.Errorf("admin link %q", link)
			}
			if n := statesOf(t, br); n != 0 {
				t.Errorf("%d connect states kept for a non-admin", n)
			}
			res, body = br.get("/connect/callback?"+successQuery(br.plantState(), contosoID).Encode(), false)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "An administrator needs to approve this") {
				t.Errorf("forged callback: %d %s: %.500s", res.StatusCode, res.Header.Get("Location"), body)
			}
			if n := statesOf(t, br); n != 0 {
				t.Errorf("forged callback left %d states", n)
			}
		})
	}
	t.Cleanup(func() {
		if got := countWritten(t, tb.pool); got != (written{}) {
			t.Errorf("written %+v, want nothing", got)
		}
	})
}

// TestForgedConsentKeepsDisconnected: after the customer's admin
// disconnected, a non-admin of the organization cannot revive it, neither
// through /connect nor with a forged callback of their own state.
func TestForgedConsentKeepsDisconnected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.browser(t)
	admin.signIn(contosoAdm)
	_, body := admin.get("/connect/callback?"+successQuery(admin.connectState(), contosoID).Encode(), true)
	if _, err := tb.store.TenantGet(context.Background(), contosoID); err != nil {
		t.Fatalf("not connected: %v: %.500s", err, body)
	}
	res, _ := admin.post("/tenant/disconnect", url.Values{"_csrf": {csrfOf(t, body)}, "confirm": {"yes"}}, false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d", res.StatusCode)
	}
	before := countWritten(t, tb.pool)

	user := tb.browser(t)
	user.signIn(contosoUser)
	if res, _ := user.get("/connect", false); res.StatusCode != http.StatusForbidden {
		t.Errorf("/connect by a non-admin: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = user.get("/connect/callback?"+successQuery(user.plantState(), contosoID).Encode(), true)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "An administrator needs to approve this") {
		t.Errorf("forged callback: %d at %s: %.500s", res.StatusCode, res.Request.URL.Path, body)
	}
	tn, err := tb.store.TenantGet(context.Background(), contosoID)
	if err != nil || tn.Status != domain.TenantDisconnected || tn.ConsentedBy != contosoAdm {
		t.Errorf("tenant %+v %v", tn, err)
	}
	if got := countWritten(t, tb.pool); got != before {
		t.Errorf("written %+v, want %+v", got, before)
	}
}

// TestAdminLinkConnects: the link on the needs-admin page signs the admin
// in (not signed in, or signed in to another organization) and starts
// their own consent; approving ends on the connected page.
func TestAdminLinkConnects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare signs the admin's browser in (or not) and returns the
		// emulator sign-in page the link leads to.
		prepare func(t *testing.T, admin *browser, link string) *http.Response
	}{
		{"admin not signed in", func(t *testing.T, admin *browser, link string) *http.Response {
			res, body := admin.get(link, true)
			if !strings.Contains(body, `id="signin"`) {
				t.Fatalf("link led to %s: %.500s", res.Request.URL, body)
			}
			return res
		}},
		{"admin signed in to another organization", func(t *testing.T, admin *browser, link string) *http.Response {
			admin.signIn("admin@fabrikam.example")
			res, body := admin.get(link, false)
			switchLink := htmlUnescape(regexpFind(`id="switch-account" href="([^"]+)"`, body))
			if res.StatusCode != http.StatusOK || switchLink == "" || !strings.Contains(body, contosoID) {
				t.Fatalf("link as another organization's admin: %d: %.800s", res.StatusCode, body)
			}
			res, body = admin.get(switchLink, true)
			if !strings.Contains(body, `id="signin"`) || res.Request.URL.Query().Get("prompt") != "select_account" {
				t.Fatalf("switch led to %s: %.500s", res.Request.URL, body)
			}
			return res
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			user := tb.browser(t)
			user.signIn(contosoUser)
			_, body := user.get("/connect", false)
			link := htmlUnescape(regexpFind(`id="admin-link"[^>]*value="([^"]*)"`, body))
			if link == "" {
				t.Fatalf("no admin link: %.500s", body)
			}

			admin := tb.browser(t)
			signin := tt.prepare(t, admin, link)
			res, body := admin.post(signin.Request.URL.String(), url.Values{"login": {contosoAdm}, "password": {tb.emu.Seed().DefaultPassword}}, true)
			if !strings.Contains(body, `id="consent"`) {
				t.Fatalf("after sign-in at %s: %.500s", res.Request.URL, body)
			}
			res, _ = admin.post(res.Request.URL.String(), url.Values{"action": {"accept"}}, false)
			res, body = admin.get(res.Header.Get("Location"), true)
			if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/tenant" || !strings.Contains(body, "Consent received") {
				t.Fatalf("approval ended at %s with %d: %.800s", res.Request.URL, res.StatusCode, body)
			}
			tn, err := tb.store.TenantGet(context.Background(), contosoID)
			if err != nil || tn.Status != domain.TenantPending || tn.ConsentedBy != contosoAdm {
				t.Errorf("tenant %+v %v", tn, err)
			}
		})
	}
}
