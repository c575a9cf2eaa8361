package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/queue"
)

type subscriptionsCheckWorker struct {
	river.WorkerDefaults[queue.SubscriptionsCheckArgs]
	d *Deps
}

// Work enqueues an EnsureSubscriptions for up to SubscriptionBatch tenants
// whose subscriptions expire within the renewal window, nearest first, or
// that keep subscriptions but are no longer active, and
// for up to as many active tenants without live subscriptions whose last
// attempt is older than SubscriptionRetry (or that a dead worker left
// subscribing). The ensure jobs are unique per tenant, so a tenant still
// queued from the last check is not queued twice.
func (w *subscriptionsCheckWorker) Work(ctx context.Context, _ *river.Job[queue.SubscriptionsCheckArgs]) error {
	d := w.d
	now := d.Now()
	due, err := d.Store.SubscriptionTenantsDue(ctx, now.Add(d.SubscriptionRenewWindow), d.SubscriptionBatch)
	if err != nil {
		return err
	}
	unsubscribed, err := d.Store.SubscriptionTenantsUnsubscribed(ctx, now.Add(-d.SubscriptionRetry), now.Add(-d.RescueAfter), d.SubscriptionBatch)
	if err != nil {
		return err
	}
	ids := append(due, unsubscribed...)
	if len(ids) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: queue.EnsureSubscriptionsArgs{TenantID: id}}
	}
	if _, err := river.ClientFromContext[pgx.Tx](ctx).InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue subscription upkeep: %w", err)
	}
	d.Logger.Info("subscription upkeep enqueued", "due", len(due), "unsubscribed", len(unsubscribed))
	return nil
}
