package queue

import "github.com/riverqueue/river"

// EnsureSubscriptionsArgs asks the worker to bring a tenant's Graph change
// notification subscriptions (users and groups, docs/protocol.md §7) in line
// with the tenant's state: create what is missing for an active tenant, renew
// what expires soon, re-create what vanished, delete them all for a tenant
// that is no longer active.
type EnsureSubscriptionsArgs struct {
	TenantID string `json:"tenant_id" river:"unique"`
	// Reauthorize is set when Graph sent a reauthorizationRequired lifecycle
	// notification for one of the tenant's subscriptions. It is part of the
	// unique key, so a queued plain job does not swallow it.
	Reauthorize bool `json:"reauthorize,omitempty" river:"unique"`
}

// Kind names the job kind.
func (EnsureSubscriptionsArgs) Kind() string { return "ensure_subscriptions" }

// InsertOpts makes the job unique per tenant while one is queued or running.
func (EnsureSubscriptionsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: ActiveStates}}
}
