package webapp

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
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

// Take spends state and, when this session held it and c is set, records
// the consent: the tenant and its event in the round trip that checks the
// state, then its VerifyTenant job.
func (cb callbackTx) Take(ctx context.Context, state string, notBefore, notAfter time.Time, c *onboarding.Consent) (bool, domain.Tenant, error) {
	if c == nil {
		held, err := cb.store.ConnectStateTake(ctx, state, cb.binding, notBefore, notAfter)
		return held, domain.Tenant{}, err
	}
	t, held, err := cb.store.ConnectStateTakeConsent(ctx, state, cb.binding, notBefore, notAfter, c.TenantID, c.By.Actor(), c.By.ObjectID)
	if err != nil || !held {
		return held, domain.Tenant{}, err
	}
	if _, err := cb.jobs.InsertTx(ctx, cb.tx, queue.VerifyTenantArgs{TenantID: c.TenantID}, nil); err != nil {
		return false, domain.Tenant{}, fmt.Errorf("enqueue verification of tenant %s: %w", c.TenantID, err)
	}
	return true, t, nil
}
