package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

type syncWorker struct {
	river.WorkerDefaults[queue.SyncTenantArgs]
	d *Deps
}

// Timeout bounds one slice of a sync. A slice stops fetching at SyncSlice;
// the rest of the timeout is room for its last page. It stays below
// RescueAfter, so River never rescues a slice that is still alive.
func (w *syncWorker) Timeout(*river.Job[queue.SyncTenantArgs]) time.Duration { return w.d.jobTimeout() }

// Work runs one slice of a tenant's sync under the tenant's lease: at most
// SyncSlice of pages, then the job snoozes and its next run resumes from the
// checkpoint. However large the tenant, no job runs long enough to be
// mistaken for a dead one, and a job of a dead worker is rescued within
// RescueAfter and resumes where the dead one last committed.
func (w *syncWorker) Work(ctx context.Context, job *river.Job[queue.SyncTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	lease := domain.SyncLease{Owner: uuid.NewString(), TTL: d.SyncLease}
	begun, err := d.Store.SyncBegin(ctx, tid, lease)
	if errors.Is(err, domain.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	t := begun.Tenant
	if !t.Status.Syncs() || t.SyncSuspended {
		return nil // SyncBegin takes no lease for such a tenant
	}
	if !begun.Taken {
		// Another job syncs the tenant now (a forced full round beside a
		// periodic delta one). Look again soon: a live holder is usually
		// done in seconds, a dead one's lease lapses within SyncLease.
		return river.JobSnooze(min(d.SyncLease, leaseBusySnooze))
	}
	if begun.Abandoned > 0 {
		d.log(ctx).Warn("closed sync runs of a worker that stopped", "tenant_id", tid, "abandoned", begun.Abandoned)
	}
	released := false
	defer func() {
		if released {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := d.Store.SyncLeaseRelease(rctx, tid, lease.Owner); err != nil {
			d.log(ctx).Warn("sync lease not released; it lapses by itself", "tenant_id", tid, "error", err.Error())
		}
	}()
	opt := dirsync.Options{Lease: lease, Until: d.Now().Add(d.SyncSlice)}
	if job.Args.Full {
		opt.FullJob = job.ID
	}
	if !d.ChangeNotifications {
		// The round's end is recorded with the run, in one round trip, and
		// releases the lease; with notifications on, its interval depends
		// on the subscription, read after the round (below).
		opt.End = &domain.SyncEnd{Interval: d.SyncInterval, LeaseOwner: lease.Owner}
	}
	run, err := d.Syncer.SyncFrom(graph.WithThrottleWindow(ctx, tid, begun.ThrottledUntil), tid, begun.Checkpoints, opt)
	if run.ID != 0 {
		outcome := domain.SyncSucceeded
		if err != nil {
			outcome = domain.SyncFailed
			if domain.RetryAfterOf(err) > 0 || errors.Is(err, dirsync.ErrSliceEnded) || errors.Is(ctx.Err(), context.Canceled) {
				outcome = domain.SyncSnoozed
			}
		}
		d.Metrics.ObserveSync(string(run.Kind), string(outcome), run.Duration(d.Now()), run.Pages, run.Upserts, run.Deletes)
	}
	switch {
	case errors.Is(err, dirsync.ErrSliceEnded):
		d.log(ctx).Info("sync slice ended; continuing", "tenant_id", tid, "sync_run_id", run.ID, "pages", run.Pages)
		return river.JobSnooze(0)
	case errors.Is(err, domain.ErrSyncLeaseLost):
		// The lease lapsed (a page took longer than SYNC_LEASE) and another
		// job took the tenant; it carries on from the last committed page.
		d.log(ctx).Warn("sync lease lost; another job continues the sync", "tenant_id", tid, "sync_run_id", run.ID)
		return nil
	case err != nil:
		if snoozes(job.Metadata) >= d.MaxSnoozes && domain.RetryAfterOf(err) > 0 {
			return d.recordFailure(ctx, tid, err)
		}
		return d.handleFailure(ctx, tid, t.Status, err)
	}
	d.credentialOK()
	d.log(ctx).Info("tenant synced", "tenant_id", tid, "sync_run_id", run.ID, "kind", run.Kind, "pages", run.Pages,
		"upserts", run.Upserts, "deletes", run.Deletes, "requests", run.Requests)
	if opt.End != nil {
		released = true // SyncFrom recorded the round's end
		return nil
	}
	// Change notifications are on (issue 17): a subscribed tenant's next
	// periodic round is SyncIntervalSubscribed away; notifications bring
	// the changes, the periodic round is the safety net.
	n, err := d.Store.TenantNotificationsGet(ctx, tid)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	interval := d.SyncInterval
	if n.State == domain.NotificationsSubscribed {
		interval = d.SyncIntervalSubscribed
	}
	// The round's end releases the lease in the same statement; only if
	// that statement fails does the deferred release try again.
	if err := d.Store.TenantSyncSucceeded(ctx, tid, d.Now().Add(interval), lease.Owner); err != nil {
		return err
	}
	released = true
	return d.afterRoundNotified(ctx, job, tid, n, run)
}

// afterRoundNotified completes a round when change notifications are on.
// A full round of a tenant that is not subscribed (its first, or a resync)
// asks for its subscriptions. And when a notification came after the job
// was created, the server's unique sync insert was swallowed by this job:
// the job completes and a new delta job is inserted in one transaction, so
// the change is never lost and a burst of notifications makes one or two
// rounds.
func (d *Deps) afterRoundNotified(ctx context.Context, job *river.Job[queue.SyncTenantArgs], tid string, n domain.TenantNotifications, run domain.SyncRun) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	if run.Kind == domain.SyncFull && n.State != domain.NotificationsSubscribed {
		if _, err := client.Insert(ctx, queue.EnsureSubscriptionsArgs{TenantID: tid}, nil); err != nil {
			return fmt.Errorf("enqueue subscriptions of tenant %s: %w", tid, err)
		}
	}
	// The job completes in the transaction that reads notified_at, after
	// the read locked the tenant's row: a notification being recorded is
	// waited for and seen here, and one recorded after it finds this job
	// completed, so its own insert goes through.
	again := false
	err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		var err error
		if again, err = st.TenantNotifiedAfter(ctx, tid, job.CreatedAt); err != nil {
			return err
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil || !again {
			return err
		}
		_, err = client.InsertTx(ctx, tx, queue.SyncTenantArgs{TenantID: tid}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("complete the round of tenant %s: %w", tid, err)
	}
	if !again {
		return nil
	}
	d.log(ctx).Info("notified during the round; one more round", "tenant_id", tid)
	return nil
}

// leaseBusySnooze is how long a sync job waits when another job holds its
// tenant's lease.
const leaseBusySnooze = 5 * time.Second

func snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.Snoozes
}
