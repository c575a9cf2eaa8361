package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

type fanoutWorker struct {
	river.WorkerDefaults[queue.SyncFanoutArgs]
	d *Deps
}

const fanoutBatch = 1000

// Work enqueues a SyncTenant for every due tenant, claiming each (next_sync_at
// moves one interval ahead) in the same transaction as its InsertMany, so a
// tenant is enqueued once however long its queue wait.
func (w *fanoutWorker) Work(ctx context.Context, _ *river.Job[queue.SyncFanoutArgs]) error {
	d := w.d
	client := river.ClientFromContext[pgx.Tx](ctx)
	total := 0
	for {
		n := 0
		err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
			now := d.Now()
			ids, err := st.TenantClaimDue(ctx, now, now.Add(d.SyncInterval), fanoutBatch)
			if err != nil || len(ids) == 0 {
				return err
			}
			params := make([]river.InsertManyParams, len(ids))
			for i, id := range ids {
				params[i] = river.InsertManyParams{Args: queue.SyncTenantArgs{TenantID: id}}
			}
			if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("enqueue due syncs: %w", err)
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return err
		}
		total += n
		if n < fanoutBatch {
			break
		}
	}
	if total > 0 {
		d.Logger.Info("due tenants enqueued", "count", total)
	}
	// Close the runs of syncs whose worker died and that no sync of their
	// tenant took over (a sync that takes the lease closes them itself).
	n, err := d.Store.SyncRunAbandonLapsed(ctx, d.Now().Add(-d.SyncLease))
	if err != nil {
		return err
	}
	if n > 0 {
		d.Logger.Warn("closed sync runs of workers that stopped", "abandoned", n)
	}
	return nil
}
