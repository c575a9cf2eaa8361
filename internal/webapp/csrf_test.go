package webapp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// signedIn reports whether the browser's session is signed in.
func (br *browser) signedIn() bool {
	br.t.Helper()
	res, _ := br.get("/tenant", false)
	return res.StatusCode == http.StatusOK
}

// tokenOf returns the CSRF token of the browser's /tenant page.
func (br *browser) tokenOf() string {
	br.t.Helper()
	_, body := br.get("/tenant", false)
	return csrfOf(br.t, body)
}

// TestCSRFBoundToSession (issue #10 item 4): a token is accepted only in
// the session it was issued to, from the form body or the X-CSRF-Token
// header, never from the query string.
func TestCSRFBoundToSession(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	t.Run("token of another session, with its cookies planted", func(t *testing.T) {
		t.Parallel()
		attacker, victim := tb.browser(t), tb.browser(t)
		attacker.signIn(contosoUser)
		victim.signIn(contosoAdm)
		tok := attacker.tokenOf()
		// Cookie tossing: a neighbouring site sets every cookie but the
		// session on the victim's browser.
		base, _ := url.Parse(tb.base)
		for _, c := range attacker.c.Jar.Cookies(base) {
			if c.Name != "tenantsync_session" {
				victim.c.Jar.SetCookies(base, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
			}
		}
		res, _ := victim.post("/signout", url.Values{"_csrf": {tok}}, false)
		if res.StatusCode != http.StatusForbidden || !victim.signedIn() {
			t.Errorf("another session's token: %d, signed in %v", res.StatusCode, victim.signedIn())
		}
	})

	t.Run("token in the query string", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		br.signIn(contosoAdm)
		tok := br.tokenOf()
		res, body := br.post("/signout?_csrf="+url.QueryEscape(tok), url.Values{}, false)
		if res.StatusCode != http.StatusForbidden || !br.signedIn() {
			t.Errorf("token from the query: %d, signed in %v", res.StatusCode, br.signedIn())
		}
		// The refusal page's own sign-out form carries the session's token.
		if got := csrfOf(t, body); got != tok {
			t.Errorf("refusal page token %q, want the session's", got)
		}
	})

	t.Run("token in the header", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		br.signIn(contosoAdm)
		req, err := http.NewRequest(http.MethodPost, tb.base+"/signout", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-CSRF-Token", br.tokenOf())
		if res, _ := br.do(req, false); res.StatusCode != http.StatusSeeOther || br.signedIn() {
			t.Errorf("token from the header: %d, signed in %v", res.StatusCode, br.signedIn())
		}
	})

	t.Run("token changes at sign-in and sign-out", func(t *testing.T) {
		t.Parallel()
		br := tb.browser(t)
		br.signIn(contosoAdm)
		first := br.tokenOf()
		// Signing in again over the live session (Entra's SSO answers at
		// once) renews the session and its token.
		if res, _ := br.get("/signin?return=/tenant", true); res.Request.URL.Path != "/tenant" {
			t.Fatalf("second sign-in ended at %s", res.Request.URL)
		}
		second := br.tokenOf()
		if second == first {
			t.Fatal("the CSRF token survived a sign-in")
		}
		if res, _ := br.post("/signout", url.Values{"_csrf": {first}}, false); res.StatusCode != http.StatusForbidden {
			t.Errorf("the token from before the sign-in: %d", res.StatusCode)
		}
		if res, _ := br.post("/signout", url.Values{"_csrf": {second}}, false); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", res.StatusCode)
		}
		if res, _ := br.get("/signin?return=/tenant", true); res.Request.URL.Path != "/tenant" {
			t.Fatalf("sign-in after sign-out ended at %s", res.Request.URL)
		}
		if third := br.tokenOf(); third == second || third == first {
			t.Error("the CSRF token survived a sign-out")
		}
		if res, _ := br.post("/signout", url.Values{"_csrf": {second}}, false); res.StatusCode != http.StatusForbidden {
			t.Errorf("the token from before the sign-out: %d", res.StatusCode)
		}
	})
}

// TestCookiesHostPrefix: with an https PUBLIC_BASE_URL every cookie is
// named __Host-… with Secure, Path=/ and no Domain; over http the names
// stay as they were.
func TestCookiesHostPrefix(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, tt := range []struct {
		base, want string
		secure     bool
	}{
		{"https://portal.example", "__Host-tenantsync_session", true},
		{"http://localhost:8080", "tenantsync_session", false},
	} {
		cfg := tb.srv.cfg
		cfg.PublicBaseURL = tt.base
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		var cookies []*http.Cookie
		for _, p := range []string{"/", "/signin?return=/tenant", "/tenant", "/connect"} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			cookies = append(cookies, rec.Result().Cookies()...)
		}
		if len(cookies) == 0 {
			t.Fatalf("%s: no cookie set", tt.base)
		}
		for _, c := range cookies {
			if c.Name != tt.want || c.Secure != tt.secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly ||
				c.SameSite != http.SameSiteLaxMode || strings.Contains(c.Raw, "Domain=") {
				t.Errorf("%s: cookie %q", tt.base, c.Raw)
			}
		}
	}
}
