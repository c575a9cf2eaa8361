package jobs

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// subscriptionChangeType: for users and groups, creation, update and soft
// deletion all arrive as "updated"; "deleted" is a permanent delete
// (protocol §7).
const subscriptionChangeType = "updated,deleted"

// subscriptionMaxLifetime is Graph's longest lifetime for directory
// resources: 41,760 minutes (protocol §7).
const subscriptionMaxLifetime = 41760 * time.Minute

type ensureSubscriptionsWorker struct {
	river.WorkerDefaults[queue.EnsureSubscriptionsArgs]
	d *Deps
}

// Timeout bounds one run: a handful of Graph calls.
func (w *ensureSubscriptionsWorker) Timeout(*river.Job[queue.EnsureSubscriptionsArgs]) time.Duration {
	return w.d.jobTimeout()
}

// Work brings the tenant's subscriptions in line with its status, under the
// tenant's lease: an active (or failing) tenant gets one live
// subscription per resource, every other tenant none.
func (w *ensureSubscriptionsWorker) Work(ctx context.Context, job *river.Job[queue.EnsureSubscriptionsArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	if !domain.IsGUID(tid) {
		return river.JobCancel(fmt.Errorf("ensure subscriptions: %q is no tenant ID", job.Args.TenantID))
	}
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return nil // the tenant row is gone, and its subscription rows with it
	}
	if err != nil {
		return err
	}
	// The tenant's lease keeps two jobs from changing its subscriptions at
	// once: one could take the other's fresh subscription for an orphan.
	// It is the sync's lease, held in the tenant row, so no connection is
	// held while Graph is called; a sync of the tenant waits a few seconds.
	run := &ensureRun{Deps: d, tid: tid, lease: domain.SyncLease{Owner: uuid.NewString(), TTL: d.SyncLease}}
	taken, _, err := d.Store.SyncLeaseTake(ctx, tid, run.lease)
	if err != nil {
		return err
	}
	if !taken {
		return river.JobSnooze(min(d.SyncLease, leaseBusySnooze))
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := d.Store.SyncLeaseRelease(rctx, tid, run.lease.Owner); err != nil {
			d.log(ctx).Warn("tenant lease not released; it lapses by itself", "tenant_id", tid, "error", err.Error())
		}
	}()
	if t.Status.Syncs() {
		err = run.subscribe(ctx, tid, job.Args.Reauthorize)
		if err == nil {
			// The tenant may have left active meanwhile, and the job that
			// removes its subscriptions been swallowed by this one.
			if t, err = d.Store.TenantGet(ctx, tid); err == nil && !t.Status.Syncs() {
				err = run.unsubscribe(ctx, tid)
			}
		}
	} else {
		err = run.unsubscribe(ctx, tid)
	}
	if err == nil {
		return nil
	}
	return d.subscriptionFailure(ctx, tid, job, err)
}

// ensureRun is one run of ensure_subscriptions: the worker's Deps and the
// tenant's lease, extended before every subscription write.
type ensureRun struct {
	*Deps
	tid   string
	lease domain.SyncLease
}

// subscriptionFailure decides what a failed run means: shutdown and
// throttling pause the job, the app's own credential waits, a reason the
// tenant's admin or Graph's quota must change ends the attempt (the tenant
// stays periodic and the check retries later), anything else is retried by
// River and, on the last attempt, leaves the tenant periodic.
func (d *Deps) subscriptionFailure(ctx context.Context, tid string, job *river.Job[queue.EnsureSubscriptionsArgs], err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return river.JobSnooze(0)
	}
	f, _ := domain.FaultOf(err)
	reason := domain.NotificationReasonError
	if f != nil {
		switch {
		case f.Kind == domain.FaultAppCredentialBroken:
			return river.JobSnooze(d.CredentialBrokenSnooze)
		case f.RetryAfter > 0:
			return river.JobSnooze(f.RetryAfter)
		case f.Kind == domain.FaultQuotaExceeded:
			reason = domain.NotificationReasonQuota
		case f.Kind == domain.FaultInsufficientPermissions:
			reason = domain.NotificationReasonPermission
		case f.Kind == domain.FaultValidationFailed:
			reason = domain.NotificationReasonUnreachable
		case f.Kind.AppGone() || f.Kind == domain.FaultUnauthorized:
			// The sync finds out and moves the tenant; its subscriptions go then.
		default:
			if job.Attempt < job.MaxAttempts {
				return err
			}
		}
	} else if job.Attempt < job.MaxAttempts {
		return err
	}
	if serr := d.Store.TenantNotificationsSet(ctx, tid, domain.NotificationsPeriodic, reason); serr != nil {
		return errors.Join(err, serr)
	}
	d.log(ctx).Warn("tenant stays on periodic sync: no change notifications", "tenant_id", tid, "reason", reason, "error", err.Error())
	return nil
}

// subscribe makes sure the tenant has one live subscription per resource:
// orphans of a run that died between Graph's create and our save are
// deleted, what vanished is created again, what expires within the renewal
// window is renewed, and everything is reauthorized when Graph asked.
func (d *ensureRun) subscribe(ctx context.Context, tid string, reauthorize bool) error {
	n, err := d.Store.TenantNotificationsGet(ctx, tid)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	if n.State != domain.NotificationsSubscribed {
		if err := d.Store.TenantNotificationsSet(ctx, tid, domain.NotificationsSubscribing, ""); err != nil {
			return err
		}
	}
	rows, err := d.Store.SubscriptionList(ctx, tid)
	if err != nil {
		return err
	}
	live, err := d.cleanOrphans(ctx, tid, rows)
	if err != nil {
		return err
	}
	have := map[string]domain.Subscription{}
	for _, r := range rows {
		if !live[r.ID] {
			// Gone at Graph (expired or removed): create it again.
			if err := d.Store.SubscriptionDelete(ctx, tid, r.ID); err != nil {
				return err
			}
			continue
		}
		have[r.Resource] = r
	}
	for _, res := range []string{dirsync.ResourceUsers, dirsync.ResourceGroups} {
		r, ok := have[res]
		if ok {
			err = d.keepSubscription(ctx, tid, r, reauthorize)
			if domain.FaultKindOf(err) != domain.FaultVanished {
				if err != nil {
					return err
				}
				continue
			}
			if err := d.Store.SubscriptionDelete(ctx, tid, r.ID); err != nil {
				return err
			}
		}
		if err := d.createSubscription(ctx, tid, res); err != nil {
			return err
		}
	}
	if err := d.Store.TenantNotificationsSet(ctx, tid, domain.NotificationsSubscribed, ""); err != nil {
		return err
	}
	if n.State != domain.NotificationsSubscribed {
		d.log(ctx).Info("tenant subscribed to change notifications", "tenant_id", tid)
	}
	return nil
}

// cleanOrphans lists the tenant's subscriptions at Graph, deletes ours (to
// our notification URL) that Postgres does not know, and returns the IDs of
// Graph's live subscriptions.
func (d *ensureRun) cleanOrphans(ctx context.Context, tid string, rows []domain.Subscription) (map[string]bool, error) {
	remote, err := d.Graph.Subscriptions(ctx, tid)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, r := range rows {
		known[r.ID] = true
	}
	live := map[string]bool{}
	for _, s := range remote {
		live[s.ID] = true
		if known[s.ID] || s.NotificationURL != d.NotificationURL {
			continue
		}
		if err := d.deleteAtGraph(ctx, tid, s.ID); err != nil {
			return nil, err
		}
		d.log(ctx).Warn("deleted an orphaned subscription", "tenant_id", tid, "subscription_id", s.ID, "resource", s.Resource)
	}
	return live, nil
}

// keepSubscription renews r when it expires within the renewal window and
// reauthorizes it when asked to; a vanished subscription is FaultVanished.
func (d *ensureRun) keepSubscription(ctx context.Context, tid string, r domain.Subscription, reauthorize bool) error {
	if reauthorize {
		if err := d.limitWrite(ctx); err != nil {
			return err
		}
		if err := d.Graph.ReauthorizeSubscription(ctx, tid, r.ID); err != nil {
			return err
		}
	}
	if r.ExpiresAt.After(d.Now().Add(d.SubscriptionRenewWindow)) {
		return nil
	}
	if err := d.limitWrite(ctx); err != nil {
		return err
	}
	granted, err := d.Graph.RenewSubscription(ctx, tid, r.ID, d.subscriptionExpiry())
	if err != nil {
		return err
	}
	return d.Store.SubscriptionRenewed(ctx, tid, r.ID, granted)
}

// createSubscription creates the tenant's subscription for res with a fresh
// clientState, of which only the SHA-256 is kept.
func (d *ensureRun) createSubscription(ctx context.Context, tid, res string) error {
	secret := make([]byte, 32)
	if _, err := crand.Read(secret); err != nil {
		return fmt.Errorf("client state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(secret)
	if err := d.limitWrite(ctx); err != nil {
		return err
	}
	s, err := d.Graph.CreateSubscription(ctx, tid, graph.NewSubscription{
		Resource: res, ChangeType: subscriptionChangeType, NotificationURL: d.NotificationURL,
		LifecycleNotificationURL: d.LifecycleURL, ExpiresAt: d.subscriptionExpiry(), ClientState: state,
	})
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(state))
	// A worker that dies here leaves an orphan at Graph, which the next
	// run's cleanOrphans deletes.
	return d.Store.SubscriptionSave(ctx, domain.Subscription{ID: s.ID, TenantID: tid, Resource: res,
		ClientStateHash: hash[:], ExpiresAt: s.ExpiresAt})
}

// unsubscribe deletes the subscriptions of a tenant that is no longer
// active, at Graph and in Postgres. A subscription Graph no longer knows,
// and a tenant whose consent is gone (Graph stops delivering for it), are
// no reason to keep the rows.
func (d *ensureRun) unsubscribe(ctx context.Context, tid string) error {
	rows, err := d.Store.SubscriptionList(ctx, tid)
	if err != nil {
		return err
	}
	n, nerr := d.Store.TenantNotificationsGet(ctx, tid)
	if errors.Is(nerr, domain.ErrNotFound) && len(rows) == 0 {
		return nil // never subscribed
	}
	if nerr != nil && !errors.Is(nerr, domain.ErrNotFound) {
		return nerr
	}
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.ID] = true
	}
	remote, err := d.Graph.Subscriptions(ctx, tid)
	switch {
	case err == nil:
		for _, s := range remote {
			if s.NotificationURL == d.NotificationURL {
				ids[s.ID] = true
			}
		}
	case !accessGone(err):
		return err
	}
	for id := range ids {
		if err := d.deleteAtGraph(ctx, tid, id); err != nil && !accessGone(err) {
			return err
		}
		if err := d.Store.SubscriptionDelete(ctx, tid, id); err != nil {
			return err
		}
	}
	if n.State != domain.NotificationsPeriodic || n.Reason != domain.NotificationReasonDisabled {
		if err := d.Store.TenantNotificationsSet(ctx, tid, domain.NotificationsPeriodic, domain.NotificationReasonDisabled); err != nil {
			return err
		}
		d.log(ctx).Info("tenant's change notifications removed", "tenant_id", tid, "subscriptions", len(ids))
	}
	return nil
}

// accessGone reports whether err says the app can no longer act in the
// tenant: consent revoked or missing, roles removed, the token refused.
func accessGone(err error) bool {
	k := domain.FaultKindOf(err)
	return k.AppGone() || k == domain.FaultUnauthorized || k == domain.FaultInsufficientPermissions
}

// deleteAtGraph deletes one subscription at Graph; one already gone is
// deleted.
func (d *ensureRun) deleteAtGraph(ctx context.Context, tid, id string) error {
	if err := d.limitWrite(ctx); err != nil {
		return err
	}
	if err := d.Graph.DeleteSubscription(ctx, tid, id); err != nil && domain.FaultKindOf(err) != domain.FaultVanished {
		return err
	}
	return nil
}

// limitWrite waits for the process's share of Graph's subscription write
// rate (protocol §7: 2,000 per 20 s per app over all tenants), then extends
// the tenant's lease: a run that lost it (it outlived SYNC_LEASE and
// another job took the tenant) stops before it writes.
func (d *ensureRun) limitWrite(ctx context.Context) error {
	if err := d.SubscriptionWrites.Wait(ctx); err != nil {
		return fmt.Errorf("subscription write rate: %w", err)
	}
	return d.Store.SyncLeaseExtend(ctx, d.tid, d.lease)
}

// subscriptionExpiry is the expiration asked for: Graph's maximum less a
// margin (Graph refuses more, protocol §7) and less a random spread of up
// to SubscriptionSpread, so that a fleet subscribed at once does not come
// up for renewal at once.
func (d *Deps) subscriptionExpiry() time.Time {
	spread := time.Duration(0)
	if d.SubscriptionSpread > 0 {
		spread = rand.N(d.SubscriptionSpread)
	}
	return d.Now().Add(subscriptionMaxLifetime - subscriptionMargin - spread).UTC().Truncate(time.Second)
}

// subscriptionMargin keeps the expiration asked for clear of Graph's
// maximum, which a slow clock or a slow request could otherwise cross.
const subscriptionMargin = time.Hour
