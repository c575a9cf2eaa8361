package jobs_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// notifying is the worker with CHANGE_NOTIFICATIONS=on and the receiver as
// its public base URL.
// It returns the notification URL the worker subscribes with.
func notifying(t *testing.T, more func(*jobs.Deps)) (opts, string) {
	base := jobstest.NotificationReceiver(t)
	return opts{deps: func(d *jobs.Deps) {
		d.ChangeNotifications = true
		d.NotificationURL = base + "/graph/notifications"
		d.LifecycleURL = base + "/graph/lifecycle"
		if more != nil {
			more(d)
		}
	}}, base + "/graph/notifications"
}

func (b *testBundle) notificationState(t *testing.T, tid string) domain.TenantNotifications {
	t.Helper()
	n, err := b.store.TenantNotificationsGet(context.Background(), tid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *testBundle) waitNotificationState(t *testing.T, tid string, state domain.NotificationState, reason string) {
	t.Helper()
	eventually(t, "notification state "+string(state)+"/"+reason, func() bool {
		n, err := b.store.TenantNotificationsGet(context.Background(), tid)
		return err == nil && n.State == state && n.Reason == reason
	})
}

// ensure runs an ensure job of its own for tid: while an earlier one is
// still recorded as running, the unique insert returns that one instead.
func (b *testBundle) ensure(t *testing.T, tid string, reauthorize bool) {
	t.Helper()
	for {
		res, err := b.client.Insert(context.Background(), queue.EnsureSubscriptionsArgs{TenantID: tid, Reauthorize: reauthorize}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.waitJob(t, res.Job.ID, rivertype.JobStateCompleted)
		if !res.UniqueSkippedAsDuplicate {
			return
		}
	}
}

// assertSubscribed checks that tid has exactly one users and one groups
// subscription at the emulator, to our URLs, and that Postgres knows
// exactly those, with the same expiration.
func (b *testBundle) assertSubscribed(t *testing.T, tid, notificationURL string) []domain.Subscription {
	t.Helper()
	rows, err := b.store.SubscriptionList(context.Background(), tid)
	if err != nil {
		t.Fatal(err)
	}
	emu := b.srv.Subscriptions(tid)
	if len(emu) != 2 || len(rows) != 2 {
		t.Fatalf("%d subscriptions at the emulator, %d in Postgres; want 2 and 2: %+v %+v", len(emu), len(rows), emu, rows)
	}
	byID := map[string]entraemu.SubscriptionInfo{}
	for _, s := range emu {
		byID[s.ID] = s
	}
	for _, r := range rows {
		s, ok := byID[r.ID]
		if !ok {
			t.Fatalf("Postgres has subscription %s, the emulator does not: %+v", r.ID, emu)
		}
		if s.NotificationURL != notificationURL || !strings.HasSuffix(s.LifecycleNotificationURL, "/graph/lifecycle") ||
			s.ChangeType != "updated,deleted" || strings.TrimPrefix(s.Resource, "/") != r.Resource {
			t.Errorf("subscription at the emulator: %+v, row %+v", s, r)
		}
		if !s.ExpirationDateTime.Equal(r.ExpiresAt) {
			t.Errorf("subscription %s expires at %v at the emulator, %v in Postgres", r.ID, s.ExpirationDateTime, r.ExpiresAt)
		}
		if len(r.ClientStateHash) != sha256.Size {
			t.Errorf("client state hash of %d bytes", len(r.ClientStateHash))
		}
	}
	if rows[0].Resource == rows[1].Resource {
		t.Errorf("two subscriptions for %s", rows[0].Resource)
	}
	return rows
}

func TestSubscriptionsOfAnActiveTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID
	o, url := notifying(t, nil)
	b := setup(t, o)
	// The first full round asks for the subscriptions.
	b.activate(t, tid)
	b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
	first := b.assertSubscribed(t, tid, url)

	// Running again changes nothing: nothing expires soon.
	b.ensure(t, tid, false)
	if again := b.assertSubscribed(t, tid, url); !slices.EqualFunc(first, again, func(a, b domain.Subscription) bool {
		return a.ID == b.ID && a.ExpiresAt.Equal(b.ExpiresAt)
	}) {
		t.Errorf("an ensure with nothing to do changed the subscriptions: %+v → %+v", first, again)
	}

	// A subscribed tenant's periodic round is the safety net, SYNC_INTERVAL_SUBSCRIBED away.
	b.syncNow(t, tid, rivertype.JobStateCompleted)
	if tn := b.tenant(t, tid); tn.NextSyncAt == nil || tn.NextSyncAt.Before(time.Now().Add(5*time.Hour)) {
		t.Errorf("next sync of a subscribed tenant at %v, want about 6h away", tn.NextSyncAt)
	}

	t.Run("vanished subscription is created again", func(t *testing.T) {
		if err := b.srv.DeleteSubscription(first[0].ID); err != nil {
			t.Fatal(err)
		}
		b.ensure(t, tid, false)
		now := b.assertSubscribed(t, tid, url)
		if slices.ContainsFunc(now, func(s domain.Subscription) bool { return s.ID == first[0].ID }) {
			t.Errorf("the vanished subscription %s is still kept", first[0].ID)
		}
		first = now
	})

	t.Run("reauthorization", func(t *testing.T) {
		if err := b.srv.SendLifecycle(first[1].ID, "reauthorizationRequired"); err != nil {
			t.Fatal(err)
		}
		b.ensure(t, tid, true)
		for _, s := range b.srv.Subscriptions(tid) {
			if s.ReauthorizationRequired {
				t.Errorf("subscription %s still needs reauthorization", s.ID)
			}
		}
		b.assertSubscribed(t, tid, url)
	})

	t.Run("orphan of a worker that died before saving is deleted", func(t *testing.T) {
		_, gc := jobstest.Clients(t, b.srv, "")
		orphan, err := gc.CreateSubscription(ctx, tid, graph.NewSubscription{Resource: "users", ChangeType: "updated,deleted",
			NotificationURL: url, LifecycleNotificationURL: strings.Replace(url, "notifications", "lifecycle", 1),
			ExpiresAt: time.Now().Add(48 * time.Hour), ClientState: "an-orphans-client-state"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b.srv.Subscriptions(tid)); n != 3 {
			t.Fatalf("%d subscriptions at the emulator before cleanup, want 3", n)
		}
		b.ensure(t, tid, false)
		b.assertSubscribed(t, tid, url)
		for _, s := range b.srv.Subscriptions(tid) {
			if s.ID == orphan.ID {
				t.Errorf("orphan %s still at the emulator", orphan.ID)
			}
		}
	})
}

func TestSubscriptionRenewal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID
	o, url := notifying(t, nil)
	b := setup(t, o)
	b.activate(t, tid)
	b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
	rows, err := b.store.SubscriptionList(ctx, tid)
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v, %v", rows, err)
	}
	// Make the users subscription look due: Postgres says it expires in a day.
	if _, err := b.pool.Exec(ctx, `UPDATE graph_subscriptions SET expires_at = now() + interval '1 day' WHERE tenant_id = $1 AND id = $2`,
		tid, rows[1].ID); err != nil {
		t.Fatal(err)
	}
	b.ensure(t, tid, false)
	after, err := b.store.SubscriptionList(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	if after[1].ID != rows[1].ID || after[1].RenewedAt == nil || !after[1].ExpiresAt.After(time.Now().Add(20*24*time.Hour)) {
		t.Errorf("the due subscription: %+v, want it renewed for about four weeks", after[1])
	}
	if after[0].RenewedAt != nil {
		t.Errorf("a subscription not due was renewed: %+v", after[0])
	}
	b.assertSubscribed(t, tid, url)
}

func TestSubscriptionFallbacks(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID

	t.Run("quota", func(t *testing.T) {
		t.Parallel()
		b := setup(t, first(notifying(t, nil)))
		b.srv.SetSubscriptionQuota(1)
		b.activate(t, tid)
		b.waitNotificationState(t, tid, domain.NotificationsPeriodic, domain.NotificationReasonQuota)
		if n := len(b.srv.Subscriptions(tid)); n > 1 {
			t.Errorf("%d subscriptions beyond a quota of 1", n)
		}
		// A periodic tenant keeps SYNC_INTERVAL.
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		if tn := b.tenant(t, tid); tn.NextSyncAt == nil || tn.NextSyncAt.After(time.Now().Add(2*time.Hour)) {
			t.Errorf("next sync of a periodic tenant at %v, want SYNC_INTERVAL (1h) away", tn.NextSyncAt)
		}
	})

	t.Run("missing permission", func(t *testing.T) {
		t.Parallel()
		b := setup(t, first(notifying(t, nil)))
		b.activate(t, tid)
		b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
		for _, s := range b.srv.Subscriptions(tid) {
			if err := b.srv.DeleteSubscription(s.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.srv.RemoveRoles(tid); err != nil {
			t.Fatal(err)
		}
		b.tokens.Invalidate(tid)
		b.ensure(t, tid, false)
		if n := b.notificationState(t, tid); n.State != domain.NotificationsPeriodic || n.Reason != domain.NotificationReasonPermission {
			t.Errorf("state %s/%s, want periodic/permission", n.State, n.Reason)
		}
	})

	t.Run("unreachable endpoint", func(t *testing.T) {
		t.Parallel()
		b := setup(t, first(notifying(t, func(d *jobs.Deps) {
			d.NotificationURL = "http://127.0.0.1:1/graph/notifications" // nothing listens
		})))
		b.activate(t, tid)
		b.waitNotificationState(t, tid, domain.NotificationsPeriodic, domain.NotificationReasonUnreachable)
		if n := len(b.srv.Subscriptions(tid)); n != 0 {
			t.Errorf("%d subscriptions with an unreachable endpoint", n)
		}
	})
}

func TestSubscriptionsEndWithTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID

	t.Run("disconnect", func(t *testing.T) {
		t.Parallel()
		b := setup(t, first(notifying(t, nil)))
		b.activate(t, tid)
		b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
		// As the server's disconnect does: the status, then a purge job.
		if err := b.store.TenantSetStatus(ctx, tid, domain.TenantDisconnected, "disconnected by an operator", "operator"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Insert(ctx, queue.PurgeTenantArgs{TenantID: tid}, nil); err != nil {
			t.Fatal(err)
		}
		b.waitNotificationState(t, tid, domain.NotificationsPeriodic, domain.NotificationReasonDisabled)
		if n := len(b.srv.Subscriptions(tid)); n != 0 {
			t.Errorf("%d subscriptions left at the emulator", n)
		}
		if rows, err := b.store.SubscriptionList(ctx, tid); err != nil || len(rows) != 0 {
			t.Errorf("subscriptions left in Postgres: %+v, %v", rows, err)
		}
	})

	t.Run("revoked consent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, first(notifying(t, nil)))
		b.activate(t, tid)
		b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
		if err := b.srv.RevokeConsent(tid); err != nil {
			t.Fatal(err)
		}
		b.tokens.Invalidate(tid)
		b.syncNow(t, tid, rivertype.JobStateCompleted)
		if tn := b.tenant(t, tid); tn.Status != domain.TenantConsentRevoked {
			t.Fatalf("status %s, want consent_revoked", tn.Status)
		}
		b.waitNotificationState(t, tid, domain.NotificationsPeriodic, domain.NotificationReasonDisabled)
		if rows, err := b.store.SubscriptionList(ctx, tid); err != nil || len(rows) != 0 {
			t.Errorf("subscriptions left in Postgres: %+v, %v", rows, err)
		}
	})
}

// TestNotificationDuringARound: a notification recorded after a sync job
// was created (the server's unique insert swallowed by that job) makes
// exactly one more round.
func TestNotificationDuringARound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID
	b := setup(t, first(notifying(t, nil)))
	b.activate(t, tid)
	b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
	syncJobs := func() []*rivertype.JobRow {
		t.Helper()
		res, err := b.client.JobList(ctx, river.NewJobListParams().Kinds(queue.SyncTenantArgs{}.Kind()).First(100))
		if err != nil {
			t.Fatal(err)
		}
		return res.Jobs
	}
	before := len(syncJobs())
	// The job and the notification in one transaction, the notification
	// stamped after the job's creation time (the transaction's start).
	var id int64
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		res, err := b.client.InsertTx(ctx, tx, queue.SyncTenantArgs{TenantID: tid}, nil)
		if err != nil {
			return err
		}
		id = res.Job.ID
		_, err = tx.Exec(ctx, `UPDATE tenant_notifications SET notified_at = clock_timestamp(), notifications = notifications + 1 WHERE tenant_id = $1`, tid)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.waitJob(t, id, rivertype.JobStateCompleted)
	// The follow-up job was inserted in the transaction that completed the first.
	jobs := syncJobs()
	if len(jobs) != before+2 {
		t.Fatalf("%d sync jobs after the notified round, want %d (one more round)", len(jobs), before+2)
	}
	next := slices.MaxFunc(jobs, func(a, b *rivertype.JobRow) int { return int(a.ID - b.ID) })
	if next.ID == id {
		t.Fatal("no job after the notified one")
	}
	b.waitJob(t, next.ID, rivertype.JobStateCompleted)
	if n := len(syncJobs()); n != before+2 {
		t.Errorf("%d sync jobs after the extra round, want %d: a notification makes one more round, not a chain", n, before+2)
	}
}

func first[A, B any](a A, _ B) A { return a }

// TestSubscriptionsCheck: the leader's periodic check finds subscriptions
// that expire within the renewal window and tenants left periodic long
// enough ago, and has them ensured.
func TestSubscriptionsCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID
	o, url := notifying(t, func(d *jobs.Deps) { d.SubscriptionCheckInterval = time.Hour })
	b := setup(t, o)
	b.activate(t, tid)
	b.waitNotificationState(t, tid, domain.NotificationsSubscribed, "")
	// check enqueues a check unless one is queued: an ensure it enqueues
	// can be swallowed by one still recorded as running, and the next
	// check (every SubscriptionCheckInterval) catches the tenant then.
	check := func() {
		t.Helper()
		if _, err := b.client.Insert(ctx, queue.SubscriptionsCheckArgs{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rows := b.assertSubscribed(t, tid, url)

	// Expiring within the window: renewed.
	if _, err := b.pool.Exec(ctx, `UPDATE graph_subscriptions SET expires_at = now() + interval '2 days' WHERE tenant_id = $1 AND id = $2`,
		tid, rows[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the expiring subscription renewed", func() bool {
		check()
		rs, err := b.store.SubscriptionList(ctx, tid)
		return err == nil && len(rs) == 2 && rs[0].RenewedAt != nil
	})
	b.assertSubscribed(t, tid, url)

	// Periodic for a while (the quota was reached 7 hours ago): tried again.
	for _, s := range b.srv.Subscriptions(tid) {
		if err := b.srv.DeleteSubscription(s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.pool.Exec(ctx, `DELETE FROM graph_subscriptions WHERE tenant_id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE tenant_notifications SET state = 'periodic', reason = 'quota', since = now() - interval '7 hours' WHERE tenant_id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "subscribed again", func() bool {
		check()
		n, err := b.store.TenantNotificationsGet(ctx, tid)
		return err == nil && n.State == domain.NotificationsSubscribed
	})
	b.assertSubscribed(t, tid, url)
}

// TestSubscriptionsWaitOutTheThrottleWindow: the tenant's Retry-After
// window, kept in Postgres for every job (protocol §5.7), holds for
// subscription calls too: the job snoozes without calling Graph.
func TestSubscriptionsWaitOutTheThrottleWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tid := entraemu.ContosoTenantID
	b := setup(t, first(notifying(t, nil)))
	pgtest.ActiveTenant(t, b.store, tid)
	if err := b.store.TenantThrottle(ctx, tid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := b.srv.Counters(tid).GraphRequests
	res, err := b.client.Insert(ctx, queue.EnsureSubscriptionsArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := b.waitJob(t, res.Job.ID, rivertype.JobStateScheduled)
	if row.ScheduledAt.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("snoozed until %v, want the end of the hour's window", row.ScheduledAt)
	}
	if n := b.srv.Counters(tid).GraphRequests - before; n != 0 {
		t.Errorf("%d Graph requests inside the tenant's throttle window", n)
	}
	if n := len(b.srv.Subscriptions(tid)); n != 0 {
		t.Errorf("%d subscriptions created inside the throttle window", n)
	}
}
