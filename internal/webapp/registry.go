package webapp

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
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
// in one transaction, as an operator's disconnect does.
func (r *Registry) Disconnect(ctx context.Context, tenantID string, by onboarding.User) error {
	return operator.New(r.store, r.jobs).Disconnect(ctx, tenantID, by.Actor(), operator.ReasonAdminDisconnect)
}
