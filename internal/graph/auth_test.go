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
