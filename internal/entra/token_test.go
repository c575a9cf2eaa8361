package entra_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
)

func newSource(t *testing.T, srv *entraemu.Server, secret string) *entra.TokenSource {
	t.Helper()
	app := srv.DefaultApp()
	if secret == "" {
		secret = app.Secrets[0].Value
	}
	s, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: srv.AuthorityHost, GraphBaseURL: srv.GraphBaseURL,
		ClientID: app.ClientID, Secret: secret, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenCacheAndSingleflight(t *testing.T) {
	t.Parallel()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	s := newSource(t, srv, "")
	tid := entraemu.ContosoTenantID
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Token(context.Background(), tid); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	tok, err := s.Token(context.Background(), strings.ToUpper(tid))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(entra.RequiredRoles(), tok.Roles); d != "" {
		t.Errorf("roles (-want +got):\n%s", d)
	}
	if strings.Contains(tok.String(), tok.Value) {
		t.Errorf("Token.String shows the token")
	}
	if n := srv.Counters(tid).TokenRequests; n != 1 {
		t.Errorf("%d token requests for 9 calls, want 1", n)
	}
	s.Invalidate(tid)
	tok2, err := s.Token(context.Background(), tid)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Counters(tid).TokenRequests; n != 2 || tok2.Value == tok.Value {
		t.Errorf("after Invalidate: %d token requests, same token %v; want a fresh token", n, tok2.Value == tok.Value)
	}
}

func TestTokenErrorsAreClassified(t *testing.T) {
	t.Parallel()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	good := newSource(t, srv, "")
	bad := newSource(t, srv, "wrong-secret-value")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.DisableServicePrincipal(entraemu.FabrikamTenantID))
	for _, tt := range []struct {
		name string
		src  *entra.TokenSource
		tid  string
		kind entra.TokenErrorKind
		code int
	}{
		{"not consented", good, entraemu.LitwareTenantID, entra.ConsentMissing, 700016},
		{"unknown tenant", good, "00000000-0000-4000-8000-000000000001", entra.TenantNotFound, 90002},
		{"not a GUID", good, "contoso", entra.TenantNotFound, 0},
		{"disabled service principal", good, entraemu.FabrikamTenantID, entra.ServicePrincipalDisabled, 7000112},
		{"wrong secret", bad, entraemu.ContosoTenantID, entra.AppCredentialBroken, 7000215},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.src.Token(context.Background(), tt.tid)
			te, ok := entra.AsTokenError(err)
			if !ok || te.Kind != tt.kind || (tt.code != 0 && !te.HasCode(tt.code)) {
				t.Fatalf("error %v, want kind %s with AADSTS%d", err, tt.kind, tt.code)
			}
			if strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), "Trace ID") {
				t.Errorf("error leaks the request or the description: %v", err)
			}
		})
	}
}

func TestMissingRoles(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		granted []string
		want    []string
	}{
		{[]string{"User.Read.All", "GroupMember.Read.All", "Organization.Read.All"}, nil},
		{[]string{"Directory.Read.All"}, nil},
		{[]string{"User.Read.All", "Group.Read.All"}, []string{"Organization.Read.All"}},
		{nil, []string{"User.Read.All", "GroupMember.Read.All", "Organization.Read.All"}},
	} {
		if d := cmp.Diff(tt.want, entra.MissingRoles(tt.granted)); d != "" {
			t.Errorf("MissingRoles(%v) (-want +got):\n%s", tt.granted, d)
		}
	}
}

// TestFreshTokenConfirmsRevocation: Fresh asks Entra past both caches, so
// a revocation that a cached token hides is seen; Entra's "consent
// missing" then drops the cached token, and a token issued after the admin
// consents again is served from then on (issue 11, defect 3).
func TestFreshTokenConfirmsRevocation(t *testing.T) {
	t.Parallel()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	s := newSource(t, srv, "")
	tid := entraemu.ContosoTenantID
	ctx := context.Background()
	old, err := s.Token(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := s.Fresh(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Counters(tid).TokenRequests; n != 2 || fresh.Value == old.Value {
		t.Errorf("Fresh: %d token requests, same token %v; want a newly issued token", n, fresh.Value == old.Value)
	}
	if got, err := s.Token(ctx, tid); err != nil || got.Value != fresh.Value {
		t.Errorf("Token after Fresh: same token %v, %v; want the fresh one from the cache", got.Value == fresh.Value, err)
	}

	if err := srv.RevokeConsent(tid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, tid); err != nil {
		t.Fatalf("Token after revocation: %v, want the cached token (Entra is not asked)", err)
	}
	for _, call := range []struct {
		name string
		get  func(context.Context, string) (entra.Token, error)
	}{{"Fresh", s.Fresh}, {"Token after Fresh failed", s.Token}} {
		_, err := call.get(ctx, tid)
		if te, ok := entra.AsTokenError(err); !ok || te.Kind != entra.ConsentMissing {
			t.Errorf("%s after revocation: %v, want consent missing", call.name, err)
		}
	}

	if err := srv.Grant(tid); err != nil {
		t.Fatal(err)
	}
	again, err := s.Token(ctx, tid)
	if err != nil {
		t.Fatalf("Token after consent again: %v", err)
	}
	if again.Value == fresh.Value {
		t.Error("Token after consent again: the token from before the revocation")
	}
}
