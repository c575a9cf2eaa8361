package entraemu

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (apt-get install -y chromium)")
	}
	t.Skip("chromium not found; install it with apt-get install -y chromium")
	return ""
}

// TestChromiumSignInAndConsent drives the sign-in and consent pages in
// headless Chromium: admin consent for Litware, back to the app's callback.
func TestChromiumSignInAndConsent(t *testing.T) {
	exec := chromiumPath(t)
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><p id="result">%s</p>`, html.EscapeString(r.URL.RawQuery))
	}))
	t.Cleanup(app.Close)
	callback := app.URL + "/connect/callback"
	seed := SmallSeed()
	seed.Apps[0].RedirectURIs = append(seed.Apps[0].RedirectURIs, callback)
	s := StartTest(t, Config{Seed: seed})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exec),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // start the browser before the timeout
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	defer cancelT()

	q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {callback}, "state": {"browser-state"},
		"scope": {"https://graph.microsoft.com/.default"}}
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.AuthorityHost+"/"+LitwareTenantID+"/v2.0/adminconsent?"+q.Encode()),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "admin@litware.example"),
		chromedp.SendKeys(chromedp.ID("password"), DefaultPasswordValue),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("accept")),
		chromedp.Click(chromedp.ID("accept")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if err != nil {
		t.Fatalf("browser flow: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := url.ParseQuery(text)
	if got.Get("admin_consent") != "True" || got.Get("tenant") != LitwareTenantID || got.Get("state") != "browser-state" {
		t.Fatalf("callback query = %q", text)
	}
	if claims := decodeJWT(t, secretToken(t, s, LitwareTenantID)); len(toStrings(claims["roles"])) != 3 {
		t.Errorf("roles after browser consent = %v", claims["roles"])
	}

	// The SSO cookie makes a sign-in at authorize skip the form.
	au := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"s2"}, "nonce": {"n2"}}
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.AuthorityHost+"/organizations/oauth2/v2.0/authorize?"+au.Encode()),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if err != nil {
		t.Fatalf("SSO authorize: %v", err)
	}
	text, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	if got, _ := url.ParseQuery(text); got.Get("code") == "" || got.Get("state") != "s2" || !strings.Contains(text, "session_state") {
		t.Errorf("authorize callback = %q", text)
	}
}
