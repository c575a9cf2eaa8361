// Package operator carries out the ISV operators' actions on a tenant — sync
// now, full resync, suspend and resume syncing, disconnect and purge — each
// in one transaction with its audit event and the job that follows. The
// console and the JSON API share it. It sits above postgres and jobs.
package operator

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// Actions runs operator actions against the store and River.
type Actions struct {
	store *postgres.Store
	jobs  *river.Client[pgx.Tx]
}

// New returns Actions over store and an insert-only River client.
func New(store *postgres.Store, jobsClient *river.Client[pgx.Tx]) *Actions {
	return &Actions{store: store, jobs: jobsClient}
}

// SyncRequest is the outcome of asking for a sync.
type SyncRequest struct {
	JobID int64 `json:"job_id"`
	// Duplicate is true when a sync of the tenant was already queued or
	// running; no second one is added.
	Duplicate bool `json:"duplicate"`
}

// RequestSync enqueues a sync of the tenant (full = a full round that
// replaces the copy) and records who asked. Only connected tenants sync.
func (a *Actions) RequestSync(ctx context.Context, tenantID string, full bool, actor string) (SyncRequest, error) {
	var out SyncRequest
	err := a.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		t, err := st.TenantGetForUpdate(ctx, tenantID)
		if err != nil {
			return err
		}
		if !t.Status.Syncs() {
			return domain.Conflictf("tenant %s is %s; only active or failing tenants sync", tenantID, t.Status)
		}
		if t.SyncSuspended {
			return domain.Conflictf("syncing of tenant %s is suspended; resume it first", tenantID)
		}
		kind := "sync now"
		if full {
			kind = "full resync"
		}
		if err := st.TenantEventAdd(ctx, domain.TenantEvent{TenantID: tenantID, Kind: domain.EventSyncRequested, Reason: kind, Actor: actor}); err != nil {
			return err
		}
		res, err := a.jobs.InsertTx(ctx, tx, queue.SyncTenantArgs{TenantID: tenantID, Full: full}, nil)
		if err != nil {
			return fmt.Errorf("enqueue sync of tenant %s: %w", tenantID, err)
		}
		out = SyncRequest{JobID: res.Job.ID, Duplicate: res.UniqueSkippedAsDuplicate}
		return nil
	})
	return out, err
}

// SetSuspended suspends or resumes the periodic syncing of a tenant.
func (a *Actions) SetSuspended(ctx context.Context, tenantID string, suspended bool, actor string) error {
	return a.store.Tx(ctx, func(_ pgx.Tx, st *postgres.Store) error {
		changed, err := st.TenantSetSuspended(ctx, tenantID, suspended)
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		kind := domain.EventResumed
		if suspended {
			kind = domain.EventSuspended
		}
		return st.TenantEventAdd(ctx, domain.TenantEvent{TenantID: tenantID, Kind: kind, Actor: actor})
	})
}

// Reasons recorded by Disconnect.
const (
	ReasonOperatorDisconnect = "disconnected by an operator"
	ReasonAdminDisconnect    = "disconnected by an administrator of the organization"
)

// Disconnect marks the tenant disconnected (with reason in its history) and
// enqueues the purge of its directory copy, in one transaction. The portal's
// disconnect by the customer's admin uses it too.
func (a *Actions) Disconnect(ctx context.Context, tenantID, actor, reason string) error {
	return a.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		t, err := st.TenantGetForUpdate(ctx, tenantID)
		if err != nil {
			return err
		}
		if t.Status == domain.TenantDisconnected {
			return domain.Conflictf("tenant %s is already disconnected", tenantID)
		}
		if err := st.TenantSetStatus(ctx, tenantID, domain.TenantDisconnected, reason, actor); err != nil {
			return err
		}
		if _, err := a.jobs.InsertTx(ctx, tx, queue.PurgeTenantArgs{TenantID: tenantID}, nil); err != nil {
			return fmt.Errorf("enqueue purge of tenant %s: %w", tenantID, err)
		}
		return nil
	})
}
