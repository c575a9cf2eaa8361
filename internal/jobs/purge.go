package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/queue"
)

type purgeWorker struct {
	river.WorkerDefaults[queue.PurgeTenantArgs]
	d *Deps
}

// Work deletes the directory copy of a tenant that is still disconnected or
// revoked PURGE_AFTER after it became so; a reconnected tenant keeps it.
func (w *purgeWorker) Work(ctx context.Context, job *river.Job[queue.PurgeTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return nil // the tenant row is gone, and its copy with it (ON DELETE CASCADE)
	}
	if err != nil {
		return err
	}
	if t.Status != domain.TenantDisconnected && t.Status != domain.TenantConsentRevoked {
		return nil
	}
	// The server's disconnect enqueues this job at once: the tenant's
	// subscriptions go now, whenever its copy is purged.
	if d.ChangeNotifications {
		res, err := river.ClientFromContext[pgx.Tx](ctx).Insert(ctx, queue.EnsureSubscriptionsArgs{TenantID: tid}, nil)
		if err != nil {
			return fmt.Errorf("enqueue removal of the subscriptions of tenant %s: %w", tid, err)
		}
		if res.UniqueSkippedAsDuplicate && res.Job.State == rivertype.JobStateRunning {
			// A job that read the tenant before the disconnect is still
			// finishing (or just finished, and River has not recorded it
			// yet): it swallowed this one. Enqueue again in a moment.
			return river.JobSnooze(time.Second)
		}
	}
	if due := t.StatusChangedAt.Add(d.PurgeAfter); d.Now().Before(due) {
		return river.JobSnooze(due.Sub(d.Now()))
	}
	if err := d.Store.DirectoryPurge(ctx, tid); err != nil {
		return err
	}
	if err := d.Store.TenantEventAdd(ctx, domain.TenantEvent{TenantID: tid, Kind: domain.EventPurged,
		FromStatus: string(t.Status), ToStatus: string(t.Status), Reason: "directory copy deleted", Actor: "worker"}); err != nil {
		return err
	}
	d.log(ctx).Info("tenant directory purged", "tenant_id", tid)
	return nil
}
