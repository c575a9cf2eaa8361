package webapp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/time/rate"
)

func sessionCookie(br *browser, base string) string {
	u, _ := url.Parse(base)
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == "tenantsync_session" {
			return c.Value
		}
	}
	return ""
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	t.Run("admin signs in with a renewed session", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		// A session exists before sign-in (the pending sign-in is in it).
		res, _ := br.get("/signin?return=/tenant", false)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("GET /signin: %d", res.StatusCode)
		}
		loc, _ := url.Parse(res.Header.Get("Location"))
		q := loc.Query()
		if loc.Path != "/organizations/oauth2/v2.0/authorize" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Fatalf("authorize URL %s", loc)
		}
		before := sessionCookie(br, tb.base)
		res, body := br.signIn(contosoAdm)
		if res.Request.URL.Path != "/tenant" || !strings.Contains(body, contosoAdm) {
			t.Fatalf("landed on %s: %.300s", res.Request.URL.Path, body)
		}
		if after := sessionCookie(br, tb.base); after == "" || after == before {
			t.Errorf("session token not renewed at sign-in")
		}
		// Sign out (POST + CSRF) ends the session.
		res, _ = br.post("/signout", url.Values{"_csrf": {csrfOf(t, body)}}, false)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("signout: %d", res.StatusCode)
		}
		res, _ = br.get("/tenant", false)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/signin") {
			t.Errorf("after sign-out /tenant: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
	})

	t.Run("personal account is refused with a clear page", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		res, body := br.signIn(personalUPN)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Use your work or school account") {
			t.Fatalf("status %d: %.500s", res.StatusCode, body)
		}
		res, _ = br.get("/tenant", false)
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("personal account is signed in: /tenant %d", res.StatusCode)
		}
	})

	t.Run("callback without a sign-in in this browser", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		res, body := br.get("/auth/callback?code=abc&state=xyz", false)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or was not started here") {
			t.Fatalf("status %d: %.300s", res.StatusCode, body)
		}
	})

	t.Run("callback with a wrong state", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		br.get("/signin", false)
		res, _ := br.get("/auth/callback?code=abc&state=wrong", false)
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", res.StatusCode)
		}
	})

	t.Run("callback with an invalid code", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		res, _ := br.get("/signin", false)
		loc, _ := url.Parse(res.Header.Get("Location"))
		res, body := br.get("/auth/callback?code=not-a-code&state="+url.QueryEscape(loc.Query().Get("state")), false)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Sign-in did not complete") {
			t.Fatalf("status %d: %.300s", res.StatusCode, body)
		}
	})

	t.Run("return path is never an outside URL", func(t *testing.T) {
		t.Parallel()
		for _, ret := range []string{"https://evil.example/", "//evil.example", "/\\evil.example", "/tenant/../../x", "javascript:alert(1)",
			"/connect?tenant=//evil.example", "/connect?tenant=" + contosoID + "@evil.example", "/connect?tenant=" + contosoID + "&x=1"} {
			br := tb.browser(t)
			res, _ := br.get("/signin?return="+url.QueryEscape(ret), true)
			loginPage := res.Request.URL.String()
			res, _ = br.post(loginPage, url.Values{"login": {contosoAdm}, "password": {tb.emu.Seed().DefaultPassword}}, true)
			if res.Request.URL.Host != strings.TrimPrefix(tb.base, "http://") || res.Request.URL.Path != "/tenant" {
				t.Errorf("return=%q landed on %s", ret, res.Request.URL)
			}
		}
	})
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.browser(t)
	admin.signIn(contosoAdm)
	state := admin.connectState()
	res, body := admin.get("/connect/callback?"+successQuery(state, contosoID).Encode(), true)
	if res.Request.URL.Path != "/tenant" || !strings.Contains(body, `id="disconnect"`) {
		t.Fatalf("after connect at %s: %.800s", res.Request.URL.Path, body)
	}
	csrf := csrfOf(t, body)

	// A non-admin of the same organization sees no button and is refused.
	user := tb.browser(t)
	_, ubody := user.signIn(contosoUser)
	if strings.Contains(ubody, `id="disconnect"`) {
		t.Error("non-admin sees the disconnect button")
	}
	res, _ = user.post("/tenant/disconnect", url.Values{"_csrf": {csrfOf(t, ubody)}, "confirm": {"yes"}}, false)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin disconnect: %d", res.StatusCode)
	}

	// Without the CSRF token the POST is refused.
	res, _ = admin.post("/tenant/disconnect", url.Values{"confirm": {"yes"}}, false)
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusForbidden {
		t.Errorf("no CSRF: %d", res.StatusCode)
	}
	res, _ = admin.post("/tenant/disconnect", url.Values{"_csrf": {"forged"}, "confirm": {"yes"}}, false)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF: %d", res.StatusCode)
	}
	// First POST: the confirmation step.
	res, body = admin.post("/tenant/disconnect", url.Values{"_csrf": {csrf}}, false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-disconnect"`) {
		t.Fatalf("confirm step %d: %.500s", res.StatusCode, body)
	}
	if got := jobsOf(t, tb.pool); len(got) != 1 {
		t.Fatalf("confirmation step wrote jobs: %+v", got)
	}
	res, body = admin.post("/tenant/disconnect", url.Values{"_csrf": {csrfOf(t, body)}, "confirm": {"yes"}}, false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Enterprise applications") || !strings.Contains(body, tb.emu.DefaultApp().ClientID) {
		t.Fatalf("disconnect %d: %.800s", res.StatusCode, body)
	}
	tn, err := tb.store.TenantGet(t.Context(), contosoID)
	if err != nil || tn.Status != "disconnected" {
		t.Fatalf("tenant %+v %v", tn, err)
	}
	jobs := jobsOf(t, tb.pool)
	if len(jobs) != 2 || jobs[1] != (jobRow{"purge_tenant", contosoID}) {
		t.Errorf("jobs %+v", jobs)
	}
	// The page now offers to connect again.
	_, body = admin.get("/tenant", true)
	if !strings.Contains(body, `data-status="disconnected"`) || !strings.Contains(body, "Connect again") {
		t.Errorf("/tenant after disconnect: %.800s", body)
	}
}

func TestOperationsAndHeaders(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(o *setupOpts) { o.callbackRate, o.callbackBurst = rate.Limit(0.001), 3 })
	br := tb.browser(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		res, body := br.get(p, false)
		if res.StatusCode != http.StatusOK || body != "ok\n" {
			t.Errorf("%s: %d %q", p, res.StatusCode, body)
		}
	}
	res, _ := br.get("/", false)
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if res.Header.Get("X-Request-Id") == "" {
		t.Error("no request ID")
	}
	// The CSRF token lives in the session (csrf.go): a visitor gets no cookie.
	if cs := res.Cookies(); len(cs) != 0 {
		t.Errorf("cookies for a visitor: %v", cs)
	}
	res, body := br.get("/static/app.css", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, ":focus-visible") {
		t.Errorf("css: %d", res.StatusCode)
	}
	res, _ = br.get("/no/such/page", false)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("404 page: %d", res.StatusCode)
	}
	// The callbacks are rate limited per client IP (burst 3 here).
	var last int
	for range 5 {
		res, _ := br.get("/connect/callback", false)
		last = res.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("callback after burst: %d, want 429", last)
	}
	// A session cookie is HttpOnly, Lax, and not Secure over http.
	res, _ = br.get("/signin", false)
	found := false
	for _, c := range res.Cookies() {
		if c.Name == "tenantsync_session" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
				t.Errorf("session cookie %+v", c)
			}
		}
	}
	if !found {
		t.Error("no session cookie at /signin")
	}
}

// An operator who signs in from the landing page lands on the console, not
// on the "not connected" page of the ISV's own organization, and every page
// offers operators (and only them) a Console link in the header.
func TestOperatorLandsOnConsole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	const consoleLink = `<a href="/console">Console</a>`

	op := tb.browser(t)
	res, body := op.signIn(operatorUPN) // as the landing page's button: return=/tenant
	if res.Request.URL.Path != "/console" || !strings.Contains(body, "<h1") || !strings.Contains(body, consoleLink) {
		t.Fatalf("operator landed on %s: %.300s", res.Request.URL.Path, body)
	}
	if _, body := op.get("/tenant", true); !strings.Contains(body, consoleLink) {
		t.Errorf("/tenant of an operator has no Console link: %.600s", body)
	}
	if _, body := op.get("/", true); !strings.Contains(body, consoleLink) || !strings.Contains(body, `href="/console">Open the console`) {
		t.Errorf("/ of an operator offers no way to the console: %.1200s", body)
	}

	admin := tb.browser(t)
	res, body = admin.signIn(contosoAdm)
	if res.Request.URL.Path != "/tenant" {
		t.Fatalf("customer admin landed on %s", res.Request.URL.Path)
	}
	for _, path := range []string{"/tenant", "/"} {
		if _, body = admin.get(path, true); strings.Contains(body, `href="/console"`) {
			t.Errorf("%s shows a customer admin a console link", path)
		}
	}
}
