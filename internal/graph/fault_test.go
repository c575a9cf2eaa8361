package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
)

// TestFailuresSpeakTheDomainVocabulary: every failure the sync must act on
// reaches it as a *domain.Fault of the right kind, whether Graph or the
// token endpoint answered: the worker branches on the kind, never on the
// client's own types or messages.
func TestFailuresSpeakTheDomainVocabulary(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	for _, tt := range []struct {
		name   string
		change func(*entraemu.Server) error
		kind   domain.FaultKind
		code   string
	}{
		{"graph revoked", func(s *entraemu.Server) error { return s.RevokeConsent(tid) }, domain.FaultConsentRevoked, "Authorization_IdentityNotFound"},
		{"graph forbidden", func(s *entraemu.Server) error { return s.RemoveRoles(tid) }, domain.FaultInsufficientPermissions, ""},
		{"graph throttled", func(s *entraemu.Server) error {
			s.SetFaults(tid, entraemu.Faults{ThrottleRate: 1, RetryAfter: time.Hour})
			return nil
		}, domain.FaultThrottled, ""},
		{"token tenant gone", func(s *entraemu.Server) error { return s.DeleteTenant(tid) }, domain.FaultTenantNotFound, "AADSTS90002"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := setup(t)
			var p domain.UsersPage
			if tt.kind == domain.FaultConsentRevoked {
				// A token first, so that Graph itself answers.
				if err := c.UsersDelta(context.Background(), tid, "", &p); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.change(srv); err != nil {
				t.Fatal(err)
			}
			err := c.UsersDelta(context.Background(), tid, "", &p)
			f, ok := domain.FaultOf(err)
			if !ok || f.Kind != tt.kind || tt.code != "" && f.Code != tt.code {
				t.Fatalf("%v: fault %+v (%v), want kind %s code %q", err, f, ok, tt.kind, tt.code)
			}
			if tt.kind == domain.FaultThrottled && domain.RetryAfterOf(err) < time.Minute {
				t.Errorf("throttled with retry-after %s, want the hour Graph asked for", domain.RetryAfterOf(err))
			}
		})
	}
}
