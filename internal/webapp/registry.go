package webapp

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Registry stores disconnections and enqueues the purge in the same
// transaction (onboarding.Registry).
type Registry struct {
	store *postgres.Store
	jobs  *river.Client[pgx.Tx]
}

var _ onboarding.Registry = (*Registry)(nil)

// NewRegistry returns a Registry over store and an insert-only River client.
func NewRegistry(store *postgres.Store, jobsClient *river.Client[pgx.Tx]) *Registry {
	return &Registry{store: store, jobs: jobsClient}
}

// Disconnect marks the tenant disconnected and inserts its PurgeTenant job
// in one transaction, as an operator's disconnect does.
func (r *Registry) Disconnect(ctx context.Context, tenantID string, by onboarding.User) error {
	return operator.New(r.store, r.jobs).Disconnect(ctx, tenantID, by.Actor(), operator.ReasonAdminDisconnect)
}

// callbackTx is the storage of one connect callback, all in one
// transaction (onboarding.Callback): the state take, the tenant upsert with
// its event, and River's InsertTx of VerifyTenant share a single commit.
type callbackTx struct {
	tx      pgx.Tx
	store   *postgres.Store // bound to tx
	jobs    *river.Client[pgx.Tx]
	binding string // the session's binding; empty when nobody is signed in
}

var _ onboarding.Callback = callbackTx{}

// TakeState consumes state and reports whether this session held it.
func (c callbackTx) TakeState(ctx context.Context, state string) (time.Time, bool, error) {
	return c.store.ConnectStateTake(ctx, state, c.binding)
}

// RecordConsent upserts the tenant as pending (with the event) and inserts
// its VerifyTenant job.
func (c callbackTx) RecordConsent(ctx context.Context, tenantID string, by onboarding.User) (domain.Tenant, error) {
	t, err := c.store.TenantUpsertConsented(ctx, tenantID, by.Actor(), by.ObjectID)
	if err != nil {
		return domain.Tenant{}, err
	}
	if _, err := c.jobs.InsertTx(ctx, c.tx, jobs.VerifyTenantArgs{TenantID: tenantID}, nil); err != nil {
		return domain.Tenant{}, fmt.Errorf("enqueue verification of tenant %s: %w", tenantID, err)
	}
	return t, nil
}
