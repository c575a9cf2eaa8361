// Package queue names tenantsync's River job kinds and their arguments, and
// builds the insert-only client that processes enqueueing in their own
// transactions use (the server). It is a leaf: the server enqueues jobs
// without linking the worker's sync code (internal/jobs), which runs them.
package queue

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// ActiveStates makes a job unique while one is queued or running, but not
// after it completed (docs/libraries.md §3: the default includes completed, which
// would block the next sync for a day).
var ActiveStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// VerifyTenantArgs asks the worker to confirm a fresh admin consent.
type VerifyTenantArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind names the job kind.
func (VerifyTenantArgs) Kind() string { return "verify_tenant" }

// InsertOpts gives verification its attempts. It is not unique: one job per
// recorded consent. River's uniqueness always covers running jobs, and a job
// stays "running" in the table until River's completer records its end a
// little later, so a consent recorded just after the previous verification
// finished would be swallowed, leaving the tenant pending. Two verifications
// of one tenant are harmless: the transition to active is a compare-and-set.
func (VerifyTenantArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10}
}

// SyncTenantArgs asks the worker to sync one tenant's directory.
type SyncTenantArgs struct {
	TenantID string `json:"tenant_id" river:"unique"`
	// Full forces a full round even when a delta link is saved. It is part
	// of the unique key: an operator's full resync is not swallowed by a
	// delta sync already queued (the per-tenant sync lock keeps the two from
	// running at once).
	Full bool `json:"full,omitempty" river:"unique"`
}

// Kind names the job kind.
func (SyncTenantArgs) Kind() string { return "sync_tenant" }

// InsertOpts makes a sync unique per tenant and kind while one is queued or running.
func (SyncTenantArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 8, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: ActiveStates}}
}

// PurgeTenantArgs asks the worker to delete a tenant's directory copy.
type PurgeTenantArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind names the job kind.
func (PurgeTenantArgs) Kind() string { return "purge_tenant" }

// InsertOpts gives a purge its attempts. It is not unique, for the reason
// VerifyTenantArgs gives: a disconnect just after an earlier purge of the
// tenant finished would lose its purge, and the copy would stay. Purges are
// idempotent and each checks the tenant's status when it runs.
func (PurgeTenantArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10}
}

// NewInserter returns an insert-only River client (no queues, no workers) for
// processes that enqueue jobs inside their own transactions, like the server.
func NewInserter(pool *pgxpool.Pool) (*river.Client[pgx.Tx], error) {
	return river.NewClient(riverpgxv5.New(pool), &river.Config{})
}

// SyncFanoutArgs is the periodic job that enqueues due tenants.
type SyncFanoutArgs struct{}

// Kind names the job kind.
func (SyncFanoutArgs) Kind() string { return "sync_fanout" }

// InsertOpts keeps at most one fan-out queued or running.
func (SyncFanoutArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: ActiveStates}}
}

// EventsPruneArgs is the periodic job that deletes change-feed events older
// than EVENTS_RETENTION (docs/events.md).
type EventsPruneArgs struct{}

// Kind names the job kind.
func (EventsPruneArgs) Kind() string { return "events_prune" }

// InsertOpts keeps at most one prune queued or running.
func (EventsPruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: ActiveStates}}
}
