package queue

import "github.com/riverqueue/river"

// SubscriptionsCheckArgs is the periodic job that enqueues an
// EnsureSubscriptions for tenants whose subscriptions expire soon and for
// active tenants without live subscriptions whose last attempt is old
// (issue 17). Only the worker inserts it.
type SubscriptionsCheckArgs struct{}

// Kind names the job kind.
func (SubscriptionsCheckArgs) Kind() string { return "subscriptions_check" }

// InsertOpts keeps at most one check queued or running.
func (SubscriptionsCheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: ActiveStates}}
}
