package entraemu

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

const (
	authCallback    = "http://localhost:8080/auth/callback"
	connectCallback = "http://localhost:8080/connect/callback"
)

// browser is a cookie-jar client that stops at the app's redirect URIs.
func browser(t *testing.T, s *Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "localhost:8080" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return c
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signInAt loads u (expecting the sign-in form) and posts credentials.
func signInAt(t *testing.T, c *http.Client, u, login string) (*http.Response, string) {
	t.Helper()
	resp, body := get(t, c, u)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="signin"`) || !strings.Contains(body, `id="signin-submit"`) {
		t.Fatalf("GET %s: want sign-in page, got %d %s", u, resp.StatusCode, body)
	}
	return post(t, c, u, url.Values{"login": {login}, "password": {DefaultPasswordValue}})
}

func redirectParams(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func pkcePair() (verifier, challenge string) {
	verifier = "verifier-0123456789-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeURL(s *Server, tenant, challenge, mode string) string {
	q := url.Values{"client_id": {DefaultClientID}, "response_type": {"code"}, "redirect_uri": {authCallback},
		"scope": {"openid profile email offline_access"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if mode != "" {
		q.Set("response_mode", mode)
	}
	return s.AuthorityHost + "/" + tenant + "/oauth2/v2.0/authorize?" + q.Encode()
}

func TestSignInCodeFlowOIDC(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed()})
	c := browser(t, s)
	verifier, challenge := pkcePair()
	au := authorizeURL(s, "organizations", challenge, "")

	// Wrong password: the page again with an error, HTTP 200.
	resp, body := get(t, c, au)
	if resp.StatusCode != 200 {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	resp, body = post(t, c, au, url.Values{"login": {"admin@contoso.example"}, "password": {"wrong"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "AADSTS50126") || !strings.Contains(body, `id="signin"`) {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	resp, _ = post(t, c, au, url.Values{"login": {"admin@contoso.example"}, "password": {DefaultPasswordValue}})
	p := redirectParams(t, resp)
	if p.Get("state") != "st-1" || p.Get("code") == "" {
		t.Fatalf("callback params = %v", p)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		"code": {p.Get("code")}, "redirect_uri": {authCallback}, "code_verifier": {verifier},
		"scope": {"openid profile email offline_access"}}
	status, tok := postToken(t, s, "organizations", form)
	if status != 200 {
		t.Fatalf("redeem: %d %v", status, tok)
	}
	raw := tok["id_token"].(string)
	ctx := oidc.ClientContext(context.Background(), s.HTTPClient())
	v := oidc.NewVerifier("", oidc.NewRemoteKeySet(ctx, s.AuthorityHost+"/common/discovery/v2.0/keys"),
		&oidc.Config{ClientID: DefaultClientID, SkipIssuerCheck: true})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		TID   string   `json:"tid"`
		OID   string   `json:"oid"`
		PU    string   `json:"preferred_username"`
		Name  string   `json:"name"`
		Wids  []string `json:"wids"`
		Nonce string   `json:"nonce"`
		Ver   string   `json:"ver"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Issuer != s.AuthorityHost+"/"+claims.TID+"/v2.0" || claims.TID != ContosoTenantID {
		t.Errorf("iss = %s tid = %s", idt.Issuer, claims.TID)
	}
	if claims.Nonce != "n-1" || claims.PU != "admin@contoso.example" || claims.Ver != "2.0" || idt.Subject == "" {
		t.Errorf("claims = %+v sub=%s", claims, idt.Subject)
	}
	if !slices.Contains(claims.Wids, GlobalAdminRoleTemplateID) {
		t.Errorf("wids = %v, want Global Administrator", claims.Wids)
	}
	if tok["refresh_token"] == nil || tok["access_token"] == nil {
		t.Errorf("token response = %v", tok)
	}

	// Code reuse → AADSTS54005.
	status, body2 := postToken(t, s, "organizations", form)
	if status != 400 || body2["error"] != "invalid_grant" || !strings.HasPrefix(body2["error_description"].(string), "AADSTS54005:") {
		t.Errorf("reuse: %d %v", status, body2)
	}

	// SSO: the next authorize skips the sign-in page; a wrong verifier fails.
	resp, _ = get(t, c, au)
	p = redirectParams(t, resp)
	form.Set("code", p.Get("code"))
	form.Set("code_verifier", "not-the-verifier-not-the-verifier-not-the-verifier")
	status, body2 = postToken(t, s, "organizations", form)
	if status != 400 || body2["error"] != "invalid_grant" || !strings.HasPrefix(body2["error_description"].(string), "AADSTS501481:") {
		t.Errorf("PKCE mismatch: %d %v", status, body2)
	}

	// form_post: an auto-submitting form to the redirect URI.
	resp, body = get(t, c, authorizeURL(s, "organizations", challenge, "form_post"))
	if resp.StatusCode != 200 || !strings.Contains(body, `action="http://localhost:8080/auth/callback"`) || !strings.Contains(body, `name="code"`) {
		t.Errorf("form_post: %d %s", resp.StatusCode, body)
	}

	// Logout clears the SSO cookie: sign-in is shown again.
	get(t, c, s.AuthorityHost+"/organizations/oauth2/v2.0/logout")
	resp, body = get(t, c, au)
	if !strings.Contains(body, `id="signin"`) {
		t.Errorf("after logout: %d, want sign-in page", resp.StatusCode)
	}
}

func TestOperatorAppRoleInIDToken(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed()})
	c := browser(t, s)
	verifier, challenge := pkcePair()
	au := authorizeURL(s, HomeTenantID, challenge, "")
	resp, _ := signInAt(t, c, au, "operator@tenantsync.example")
	p := redirectParams(t, resp)
	status, tok := postToken(t, s, HomeTenantID, url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}, "code": {p.Get("code")}, "redirect_uri": {authCallback}, "code_verifier": {verifier}})
	if status != 200 {
		t.Fatalf("redeem: %d %v", status, tok)
	}
	claims := decodeJWT(t, tok["id_token"].(string))
	if !slices.Equal(toStrings(claims["roles"]), []string{"Operator"}) || claims["wids"] != nil || claims["tid"] != HomeTenantID {
		t.Errorf("claims = %v", claims)
	}
}

func consentURL(s *Server, tenant string, v2 bool, clientID, redirect string) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "state": {"cs-1"}}
	path := "/adminconsent"
	if v2 {
		q.Set("scope", "https://graph.microsoft.com/.default")
		path = "/v2.0/adminconsent"
	}
	return s.AuthorityHost + "/" + tenant + path + "?" + q.Encode()
}

func TestAdminConsent(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed()})

	t.Run("accept", func(t *testing.T) {
		c := browser(t, s)
		u := consentURL(s, LitwareTenantID, true, DefaultClientID, connectCallback)
		resp, body := signInAt(t, c, u, "admin@litware.example")
		for _, want := range []string{`id="consent"`, `id="accept"`, `id="cancel"`, "tenantsync", "User.Read.All", "GroupMember.Read.All"} {
			if !strings.Contains(body, want) {
				t.Fatalf("consent page lacks %q: %d %s", want, resp.StatusCode, body)
			}
		}
		resp, _ = post(t, c, u, url.Values{"action": {"accept"}})
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, connectCallback+"?admin_consent=True&tenant="+LitwareTenantID+"&scope=") || !strings.HasSuffix(loc, "&state=cs-1#") {
			t.Fatalf("Location = %q", loc)
		}
		p := redirectParams(t, resp)
		if p.Get("scope") != "https://graph.microsoft.com/User.Read.All https://graph.microsoft.com/GroupMember.Read.All https://graph.microsoft.com/Organization.Read.All" {
			t.Errorf("scope = %q", p.Get("scope"))
		}
		claims := decodeJWT(t, secretToken(t, s, LitwareTenantID))
		if len(toStrings(claims["roles"])) != 3 {
			t.Errorf("token roles after consent = %v", claims["roles"])
		}
		// Same browser: SSO skips the sign-in page (v1 endpoint).
		resp, body = get(t, c, consentURL(s, "organizations", false, DefaultClientID, connectCallback))
		if !strings.Contains(body, `id="consent"`) {
			t.Fatalf("SSO consent: %d %s", resp.StatusCode, body)
		}
		resp, _ = post(t, c, consentURL(s, "organizations", false, DefaultClientID, connectCallback), url.Values{"action": {"accept"}})
		if loc := resp.Header.Get("Location"); loc != connectCallback+"?tenant="+LitwareTenantID+"&state=cs-1&admin_consent=True#" {
			t.Errorf("v1 Location = %q", loc)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		c := browser(t, s)
		u := consentURL(s, ContosoTenantID, true, DefaultClientID, connectCallback)
		signInAt(t, c, u, "admin@contoso.example")
		resp, _ := post(t, c, u, url.Values{"action": {"cancel"}})
		p := redirectParams(t, resp)
		if p.Get("error") != "access_denied" || !strings.HasPrefix(p.Get("error_description"), "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: ") ||
			p.Get("admin_consent") != "True" || p.Get("state") != "cs-1" || p.Has("tenant") ||
			p.Get("error_uri") != "https://login.microsoftonline.com/error?code=65004" {
			t.Errorf("cancel params = %v", p)
		}
		if !regexp.MustCompile(`Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`).MatchString(p.Get("error_description")) {
			t.Errorf("error_description = %q", p.Get("error_description"))
		}
	})

	t.Run("non-admin", func(t *testing.T) {
		c := browser(t, s)
		resp, body := signInAt(t, c, consentURL(s, ContosoTenantID, true, DefaultClientID, connectCallback), "user@contoso.example")
		if resp.StatusCode != 200 || !strings.Contains(body, "AADSTS90094") || !strings.Contains(body, `id="return"`) {
			t.Fatalf("non-admin: %d %s", resp.StatusCode, body)
		}
		href := regexp.MustCompile(`id="return" href="([^"]+)"`).FindStringSubmatch(body)[1]
		ret, err := url.Parse(html.UnescapeString(href))
		if err != nil || ret.Query().Get("error") != "access_denied" || ret.Query().Get("admin_consent") != "True" {
			t.Errorf("return link = %q", href)
		}
	})

	t.Run("other tenant user", func(t *testing.T) {
		c := browser(t, s)
		resp, _ := signInAt(t, c, consentURL(s, ContosoTenantID, true, DefaultClientID, connectCallback), "admin@fabrikam.example")
		p := redirectParams(t, resp)
		if p.Get("error") != "access_denied" || !strings.HasPrefix(p.Get("error_description"), "AADSTS50020: ") || p.Has("tenant") ||
			p.Get("admin_consent") != "True" || p.Get("state") != "cs-1" {
			t.Errorf("50020 params = %v", p)
		}
	})

	t.Run("bad client or redirect: error page", func(t *testing.T) {
		c := browser(t, s)
		for _, u := range []string{
			consentURL(s, ContosoTenantID, true, "00000000-0000-0000-0000-00000000beef", connectCallback),
			consentURL(s, ContosoTenantID, true, DefaultClientID, "https://evil.example/cb"),
			consentURL(s, ContosoTenantID, false, DefaultClientID, "https://evil.example/cb"),
		} {
			resp, body := get(t, c, u)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, `id="error-code"`) {
				t.Errorf("%s: %d %s", u, resp.StatusCode, body)
			}
		}
	})
}
