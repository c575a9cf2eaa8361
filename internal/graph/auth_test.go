package graph_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
)

// TestConsentRestoredAfterRevocation is issue 11, defect 3: Graph's 401
// Authorization_IdentityNotFound drops the tenant's cached token, so that
// once the admin consents again the next call gets a new token and succeeds
// at once, instead of failing with the old one until it expires.
func TestConsentRestoredAfterRevocation(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	tid := entraemu.ContosoTenantID
	ctx := context.Background()
	if _, _, err := c.Organization(ctx, tid); err != nil {
		t.Fatal(err)
	}
	if err := srv.RevokeConsent(tid); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Organization(ctx, tid)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Kind != graph.ErrConsentRevoked {
		t.Fatalf("after the app was removed: %v, want consent revoked", err)
	}
	if err := srv.Grant(tid); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Organization(ctx, tid); err != nil {
		t.Errorf("consented again: %v, want success", err)
	}
}

// badTokens hands out a token Graph rejects and counts Invalidate calls.
type badTokens struct{ invalidated int }

func (b *badTokens) AccessToken(context.Context, string) (string, error) { return "not-a-token", nil }
func (b *badTokens) Invalidate(string)                                   { b.invalidated++ }

// TestRejectedTokenIsNotKept: a 401 that a new token did not cure drops
// that token too, so the next call does not start with it.
func TestRejectedTokenIsNotKept(t *testing.T) {
	t.Parallel()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	tokens := &badTokens{}
	c, err := graph.New(graph.Config{BaseURL: srv.GraphBaseURL, HTTPClient: srv.HTTPClient(), Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Organization(context.Background(), entraemu.ContosoTenantID)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Kind != graph.ErrUnauthorized || ge.Code != "InvalidAuthenticationToken" {
		t.Fatalf("rejected token: %v, want unauthorized InvalidAuthenticationToken", err)
	}
	if tokens.invalidated != 2 {
		t.Errorf("Invalidate called %d times, want 2: before the retry and after it failed too", tokens.invalidated)
	}
}
