package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

type webhookDispatchWorker struct {
	river.WorkerDefaults[queue.WebhookDispatchArgs]
	d *Deps
}

// webhookDispatchBatch is how many events one dispatch transaction hands
// to one endpoint.
const webhookDispatchBatch = 500

// webhookSweepLimit bounds the pairs one sweep enqueues.
const webhookSweepLimit = 10000

// webhookPruneBatch bounds the finished deliveries one sweep deletes, so no
// statement runs long; a backlog goes in a few sweeps.
const webhookPruneBatch = 5000

// Work hands every enabled endpoint the events after its position: one
// delivery row per matching event, the position moved past them and a
// deliver job per (endpoint, tenant) enqueued, all in one transaction, so
// an event is handed to an endpoint once however often this runs or
// fails. Every WebhookSweepInterval it also enqueues the pairs that still
// have deliveries to make (after an endpoint is enabled again, or when a
// deliver job finished just as new deliveries committed) and deletes
// finished deliveries older than WebhookHistoryRetention.
func (w *webhookDispatchWorker) Work(ctx context.Context, job *river.Job[queue.WebhookDispatchArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d := w.d
	client := river.ClientFromContext[pgx.Tx](ctx)
	eps, err := d.Store.WebhookEndpointList(ctx, true)
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range eps {
		if err := d.dispatchEndpoint(ctx, client, ep); err != nil {
			errs = append(errs, err)
		}
	}
	if now := d.Now(); now.Sub(time.Unix(0, d.lastWebhookSweep.Load())) >= d.WebhookSweepInterval {
		pairs, err := d.Store.WebhookPairsPending(ctx, webhookSweepLimit)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if len(pairs) > 0 {
			params := make([]river.InsertManyParams, len(pairs))
			for i, p := range pairs {
				params[i] = river.InsertManyParams{Args: queue.WebhookDeliverArgs{EndpointID: p.EndpointID, TenantID: p.TenantID}}
			}
			if _, err := client.InsertMany(ctx, params); err != nil {
				return errors.Join(append(errs, fmt.Errorf("enqueue pending webhook deliveries: %w", err))...)
			}
		}
		n, err := d.Store.WebhookDeliveryPrune(ctx, now.Add(-d.WebhookHistoryRetention), webhookPruneBatch)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if n > 0 {
			d.log(ctx).Info("old webhook deliveries deleted", "count", n)
		}
		d.lastWebhookSweep.Store(now.UnixNano())
	}
	return errors.Join(errs...)
}

func (d *Deps) dispatchEndpoint(ctx context.Context, client *river.Client[pgx.Tx], ep domain.WebhookEndpoint) error {
	for {
		// Every type is read and filtered here: a position moved only to
		// the last matching event would make an endpoint of rare types
		// read the same unmatched events again on every run.
		evs, err := d.Store.EventsAfter(ctx, ep.Pos, postgres.EventFilter{}, webhookDispatchBatch)
		if errors.Is(err, domain.ErrGone) {
			d.log(ctx).Error("webhook endpoint fell behind event retention; the deleted events cannot be delivered",
				"endpoint_id", ep.ID)
			return d.Store.WebhookEndpointSkipPruned(ctx, ep.ID)
		}
		if err != nil || len(evs) == 0 {
			return err
		}
		var take []domain.Event
		for _, ev := range evs {
			if len(ep.EventTypes) == 0 || slices.Contains(ep.EventTypes, ev.Type) {
				take = append(take, ev)
			}
		}
		to := evs[len(evs)-1].Pos
		err = d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
			if err := st.WebhookDispatch(ctx, ep.ID, ep.Pos, to, take, d.Now()); err != nil {
				return err
			}
			if len(take) == 0 {
				return nil
			}
			var params []river.InsertManyParams
			seen := map[string]bool{}
			for _, ev := range take {
				if !seen[ev.TenantID] {
					seen[ev.TenantID] = true
					params = append(params, river.InsertManyParams{Args: queue.WebhookDeliverArgs{EndpointID: ep.ID, TenantID: ev.TenantID}})
				}
			}
			if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("enqueue webhook deliveries: %w", err)
			}
			return nil
		})
		if errors.Is(err, postgres.ErrMoved) {
			return nil // another dispatcher handed these out
		}
		if err != nil {
			return err
		}
		ep.Pos = to
		if len(evs) < webhookDispatchBatch {
			return nil
		}
	}
}
