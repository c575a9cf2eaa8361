package webapp

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Registry stores onboarding outcomes and enqueues the worker's follow-up in
// the same transaction (onboarding.Registry).
type Registry struct {
	store *postgres.Store
	jobs  *river.Client[pgx.Tx]
}

var _ onboarding.Registry = (*Registry)(nil)

// NewRegistry returns a Registry over store and an insert-only River client.
func NewRegistry(store *postgres.Store, jobsClient *river.Client[pgx.Tx]) *Registry {
	return &Registry{store: store, jobs: jobsClient}
}

// RecordConsent upserts the tenant as pending (with the event) and inserts
// its VerifyTenant job in one transaction.
func (r *Registry) RecordConsent(ctx context.Context, tenantID string, by onboarding.User) (domain.Tenant, error) {
	var t domain.Tenant
	err := r.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		var err error
		if t, err = st.TenantUpsertConsented(ctx, tenantID, by.Actor(), by.ObjectID); err != nil {
			return err
		}
		if _, err := r.jobs.InsertTx(ctx, tx, jobs.VerifyTenantArgs{TenantID: tenantID}, nil); err != nil {
			return fmt.Errorf("enqueue verification of tenant %s: %w", tenantID, err)
		}
		return nil
	})
	return t, err
}

// Disconnect marks the tenant disconnected and inserts its PurgeTenant job
// in one transaction.
func (r *Registry) Disconnect(ctx context.Context, tenantID string, by onboarding.User) error {
	return r.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		t, err := st.TenantGet(ctx, tenantID)
		if err != nil {
			return err
		}
		if t.Status == domain.TenantDisconnected {
			return fmt.Errorf("%w: tenant %s is already disconnected", domain.ErrConflict, tenantID)
		}
		if err := st.TenantSetStatus(ctx, tenantID, domain.TenantDisconnected, "disconnected by an administrator of the organization", by.Actor()); err != nil {
			return err
		}
		if _, err := r.jobs.InsertTx(ctx, tx, jobs.PurgeTenantArgs{TenantID: tenantID}, nil); err != nil {
			return fmt.Errorf("enqueue purge of tenant %s: %w", tenantID, err)
		}
		return nil
	})
}
