package jobs_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// TestConsentChurn: the customer's admin removes the app, grants it again,
// connects again, in every order, while the worker holds a token cached
// from before. The tenant must end where the customer left it, and its copy
// must never be purged while the consent exists. The old worker kept the
// cached token after a revocation: a re-consent went straight back to
// consent_revoked (and purged), and a revocation followed at once by a
// fresh grant revoked a tenant whose consent existed.
func TestConsentChurn(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	ctx := context.Background()

	t.Run("revoked and granted again before the next sync", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{})
		b.activate(t, tid) // the worker now holds a token of the old service principal
		if err := b.srv.RevokeConsent(tid); err != nil {
			t.Fatal(err)
		}
		if err := b.srv.Grant(tid); err != nil {
			t.Fatal(err)
		}
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		if tn := b.tenant(t, tid); tn.Status != domain.TenantActive {
			t.Errorf("tenant %s (%s) although its consent exists", tn.Status, tn.StatusReason)
		}
		jobstest.AssertCopy(t, b.srv, b.store, tid)
	})

	t.Run("revoked, then connected again through the portal", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{})
		b.activate(t, tid)
		if err := b.srv.RevokeConsent(tid); err != nil {
			t.Fatal(err)
		}
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		if tn := b.tenant(t, tid); tn.Status != domain.TenantConsentRevoked {
			t.Fatalf("after the revocation: %s (%s)", tn.Status, tn.StatusReason)
		}
		eventually(t, "purge", func() bool {
			c, err := b.store.DirectoryCounts(ctx, tid)
			return err == nil && c.Users == 0
		})
		if tn := b.tenant(t, tid); tn.UserCount != 0 || tn.GroupCount != 0 {
			t.Errorf("after the purge the tenant still counts %d users and %d groups", tn.UserCount, tn.GroupCount)
		}
		// The admin connects again: what the portal's callback does.
		if err := b.srv.Grant(tid); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.TenantUpsertConsented(ctx, tid, "admin@contoso.example", "oid"); err != nil {
			t.Fatal(err)
		}
		res, err := b.client.Insert(ctx, queue.VerifyTenantArgs{TenantID: tid}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.waitJob(t, res.Job.ID, rivertype.JobStateCompleted)
		eventually(t, "the first sync after reconnecting", func() bool {
			tn := b.tenant(t, tid)
			return tn.Status == domain.TenantActive && tn.UserCount > 0
		})
		jobstest.AssertCopy(t, b.srv, b.store, tid)
	})

	t.Run("granted, revoked, granted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, opts{})
		b.activate(t, tid)
		for range 2 {
			if err := b.srv.RevokeConsent(tid); err != nil {
				t.Fatal(err)
			}
			if err := b.srv.Grant(tid); err != nil {
				t.Fatal(err)
			}
		}
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		if tn := b.tenant(t, tid); tn.Status != domain.TenantActive {
			t.Errorf("tenant %s (%s) although its consent exists", tn.Status, tn.StatusReason)
		}
		jobstest.AssertCopy(t, b.srv, b.store, tid)
	})
}
