package entra

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
)

const testRedirect = "http://localhost:8080/auth/callback"

// signInCode signs upn in at the emulator and returns the code.
func signInCode(t *testing.T, srv *entraemu.Server, s *SignIn, upn, nonce, verifier string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := srv.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(s.AuthCodeURL("st", nonce, verifier))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = c.PostForm(res.Request.URL.String(), url.Values{"login": {upn}, "password": {srv.Seed().DefaultPassword}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code in %q (status %d)", res.Header.Get("Location"), res.StatusCode)
	}
	return loc.Query().Get("code")
}

// rawIDToken signs upn in at the emulator and redeems the code, returning
// the raw ID token issued for nonce.
func rawIDToken(t *testing.T, srv *entraemu.Server, s *SignIn, upn, nonce string) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := signInCode(t, srv, s, upn, nonce, verifier)
	tok, err := s.oauth.Exchange(context.WithValue(context.Background(), oauth2.HTTPClient, srv.HTTPClient()),
		code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	return raw
}

func newTestSignIn(t *testing.T, srv *entraemu.Server) *SignIn {
	t.Helper()
	app := srv.DefaultApp()
	s, err := NewSignIn(SignInConfig{AuthorityHost: srv.AuthorityHost, ClientID: app.ClientID, ClientSecret: app.Secrets[0].Value,
		RedirectURL: testRedirect, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignInVerify(t *testing.T) {
	t.Parallel()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	s := newTestSignIn(t, srv)
	raw := rawIDToken(t, srv, s, "admin@contoso.example", "n1")
	ctx := context.Background()

	id, err := s.Verify(ctx, raw, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if id.TenantID != entraemu.ContosoTenantID || id.Username != "admin@contoso.example" || id.ObjectID == "" ||
		len(id.DirectoryRoles) == 0 || id.DirectoryRoles[0] != RoleGlobalAdministrator {
		t.Errorf("identity %+v", id)
	}
	if _, err := s.Verify(ctx, raw, "other-nonce"); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("wrong nonce: %v", err)
	}
	if _, err := s.Verify(ctx, raw, ""); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("empty nonce: %v", err)
	}
	// iss must be exactly {configured host}/{tid}/v2.0 (protocol §4.5).
	other := *s
	other.host = strings.Replace(s.host, "127.0.0.1", "localhost", 1)
	if _, err := other.Verify(ctx, raw, "n1"); !errors.Is(err, domain.ErrUnauthorized) || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("foreign issuer: %v", err)
	}
	// aud must be this app.
	wrongAud, err := NewSignIn(SignInConfig{AuthorityHost: srv.AuthorityHost, ClientID: "00000000-0000-0000-0000-000000000001",
		ClientSecret: "x", RedirectURL: testRedirect, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrongAud.Verify(ctx, raw, "n1"); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("foreign audience: %v", err)
	}
	// A tampered signature is refused.
	parts := strings.Split(raw, ".")
	parts[2] = strings.Repeat("A", len(parts[2]))
	if _, err := s.Verify(ctx, strings.Join(parts, "."), "n1"); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("bad signature: %v", err)
	}
}

func TestAdminConsentURL(t *testing.T) {
	t.Parallel()
	got := AdminConsentURL("https://login.microsoftonline.com/", "98c7e7b9-8621-4041-9670-f4938facd9f6",
		"9aeffa6e-8ae6-492f-8c6d-a12d870c10f0", "https://app.example/connect/callback", "s t")
	want := "https://login.microsoftonline.com/98c7e7b9-8621-4041-9670-f4938facd9f6/v2.0/adminconsent?" +
		"client_id=9aeffa6e-8ae6-492f-8c6d-a12d870c10f0&redirect_uri=https%3A%2F%2Fapp.example%2Fconnect%2Fcallback" +
		"&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&state=s+t"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
