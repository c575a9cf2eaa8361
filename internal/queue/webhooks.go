package queue

import "github.com/riverqueue/river"

// WebhookDispatchArgs is the periodic job that hands new change-feed events
// to every enabled webhook endpoint and enqueues their deliveries.
type WebhookDispatchArgs struct{}

// Kind names the job kind.
func (WebhookDispatchArgs) Kind() string { return "webhook_dispatch" }

// InsertOpts keeps at most one dispatcher queued or running.
func (WebhookDispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: ActiveStates}}
}

// WebhookDeliverArgs asks the worker to send one endpoint the pending
// deliveries of one tenant, in feed order.
type WebhookDeliverArgs struct {
	EndpointID string `json:"endpoint_id" river:"unique"`
	TenantID   string `json:"tenant_id" river:"unique"`
}

// Kind names the job kind.
func (WebhookDeliverArgs) Kind() string { return "webhook_deliver" }

// InsertOpts makes delivery unique per (endpoint, tenant) while one is
// queued or running: one sender per pair is what keeps a tenant's events in
// order. A failed attempt snoozes the job (no River attempt used); River's
// retries are for the job's own errors, such as a lost database.
func (WebhookDeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: ActiveStates}}
}
