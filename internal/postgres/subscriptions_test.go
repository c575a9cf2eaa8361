package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func activeTenant(t *testing.T, st *postgres.Store, synced bool) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := st.TenantUpsertConsented(ctx, id, "admin@contoso.example", "oid-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantSetStatus(ctx, id, domain.TenantActive, "verified", "worker"); err != nil {
		t.Fatal(err)
	}
	if synced {
		if err := st.TenantSyncSucceeded(ctx, id, time.Now().Add(time.Hour), ""); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestSubscriptionsOfATenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	a, b := activeTenant(t, st, true), activeTenant(t, st, true)
	exp := now.Add(20 * 24 * time.Hour)
	for _, s := range []domain.Subscription{
		{ID: "sub-a-users", TenantID: a, Resource: "users", ClientStateHash: hashOf("1"), ExpiresAt: exp},
		{ID: "sub-a-groups", TenantID: a, Resource: "groups", ClientStateHash: hashOf("2"), ExpiresAt: exp},
		{ID: "sub-b-users", TenantID: b, Resource: "users", ClientStateHash: hashOf("3"), ExpiresAt: exp},
	} {
		if err := st.SubscriptionSave(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	list := func(tid string) []domain.Subscription {
		t.Helper()
		l, err := st.SubscriptionList(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	got := list(a)
	if len(got) != 2 || got[0].ID != "sub-a-groups" || got[1].ID != "sub-a-users" || !got[1].ExpiresAt.Equal(exp) ||
		string(got[1].ClientStateHash) != string(hashOf("1")) || got[1].RenewedAt != nil || got[1].TenantID != a {
		t.Fatalf("tenant a: %+v", got)
	}

	// Re-created after it vanished: the new subscription replaces the old.
	if err := st.SubscriptionSave(ctx, domain.Subscription{ID: "sub-a-users-2", TenantID: a, Resource: "users",
		ClientStateHash: hashOf("4"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if got := list(a); len(got) != 2 || got[1].ID != "sub-a-users-2" || string(got[1].ClientStateHash) != string(hashOf("4")) {
		t.Fatalf("after re-creation: %+v", got)
	}

	// Renewal is scoped by tenant: b cannot renew a's subscription.
	later := exp.Add(48 * time.Hour)
	if err := st.SubscriptionRenewed(ctx, b, "sub-a-groups", later); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("renew another tenant's subscription: %v, want ErrNotFound", err)
	}
	if err := st.SubscriptionRenewed(ctx, a, "sub-a-groups", later); err != nil {
		t.Fatal(err)
	}
	if got := list(a); !got[0].ExpiresAt.Equal(later) || got[0].RenewedAt == nil || !got[0].RenewedAt.Equal(*now) {
		t.Errorf("after renewal: %+v", got[0])
	}

	// Deletion is scoped by tenant too.
	if err := st.SubscriptionDelete(ctx, b, "sub-a-groups"); err != nil {
		t.Fatal(err)
	}
	if len(list(a)) != 2 {
		t.Error("b deleted a's subscription")
	}
	for range 2 {
		if err := st.SubscriptionDelete(ctx, a, "sub-a-groups"); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(a); len(got) != 1 || got[0].ID != "sub-a-users-2" {
		t.Errorf("after delete: %+v", got)
	}
	if got := list(b); len(got) != 1 || got[0].ID != "sub-b-users" {
		t.Errorf("tenant b: %+v", got)
	}

	// A clientState is kept only as its SHA-256.
	if err := st.SubscriptionSave(ctx, domain.Subscription{ID: "x", TenantID: b, Resource: "groups",
		ClientStateHash: []byte("the secret itself"), ExpiresAt: exp}); err == nil {
		t.Error("saved a client state hash that is no SHA-256")
	}
	if got := list(b); len(got) != 1 {
		t.Errorf("a refused save changed the tenant's subscriptions: %+v", got)
	}
}

func TestSubscriptionTenantsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	soon, sooner, late := activeTenant(t, st, true), activeTenant(t, st, true), activeTenant(t, st, true)
	save := func(id, tid, res string, in time.Duration) {
		t.Helper()
		if err := st.SubscriptionSave(ctx, domain.Subscription{ID: id, TenantID: tid, Resource: res,
			ClientStateHash: hashOf(id), ExpiresAt: now.Add(in)}); err != nil {
			t.Fatal(err)
		}
	}
	save("s1", soon, "users", 3*24*time.Hour)
	save("s2", soon, "groups", 25*24*time.Hour)
	save("s3", sooner, "groups", 24*time.Hour)
	save("s4", sooner, "users", 2*24*time.Hour)
	save("s5", late, "users", 25*24*time.Hour)
	gone := activeTenant(t, st, true)
	save("s6", gone, "users", 26*24*time.Hour)
	if err := st.TenantSetStatus(ctx, gone, domain.TenantDisconnected, "disconnected", "admin"); err != nil {
		t.Fatal(err)
	}
	got, err := st.SubscriptionTenantsDue(ctx, now.Add(7*24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{sooner, soon, gone}) {
		t.Errorf("due: %v, want [%s %s %s] (expiring, nearest first, then no longer active)", got, sooner, soon, gone)
	}
	got, err = st.SubscriptionTenantsDue(ctx, now.Add(7*24*time.Hour), 1)
	if err != nil || !slices.Equal(got, []string{sooner}) {
		t.Errorf("expiring, limit 1: %v, %v; want [%s]", got, err, sooner)
	}
}

func TestTenantNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	tid := activeTenant(t, st, true)
	if _, err := st.TenantNotificationsGet(ctx, tid); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("never subscribed: %v, want ErrNotFound", err)
	}
	get := func() domain.TenantNotifications {
		t.Helper()
		n, err := st.TenantNotificationsGet(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	start := *now
	if err := st.TenantNotificationsSet(ctx, tid, domain.NotificationsSubscribing, ""); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Minute)
	if err := st.TenantNotificationsSet(ctx, tid, domain.NotificationsSubscribed, ""); err != nil {
		t.Fatal(err)
	}
	subscribedAt := *now
	*now = now.Add(time.Minute)
	// Renewals keep a subscribed tenant's since.
	if err := st.TenantNotificationsSet(ctx, tid, domain.NotificationsSubscribed, ""); err != nil {
		t.Fatal(err)
	}
	if n := get(); n.State != domain.NotificationsSubscribed || n.Reason != "" || !n.Since.Equal(subscribedAt) || n.Since.Equal(start) {
		t.Errorf("subscribed: %+v, want since %v", n, subscribedAt)
	}
	// Each periodic attempt moves since: it is the last attempt.
	for range 2 {
		*now = now.Add(time.Hour)
		if err := st.TenantNotificationsSet(ctx, tid, domain.NotificationsPeriodic, domain.NotificationReasonQuota); err != nil {
			t.Fatal(err)
		}
		if n := get(); n.State != domain.NotificationsPeriodic || n.Reason != "quota" || !n.Since.Equal(*now) {
			t.Errorf("periodic: %+v, want since %v", n, *now)
		}
	}
	// Bad input is refused and changes nothing.
	for _, bad := range []struct {
		state  domain.NotificationState
		reason string
	}{{domain.NotificationsPeriodic, "bored"}, {"paused", ""}, {domain.NotificationsSubscribed, "quota"}} {
		if err := st.TenantNotificationsSet(ctx, tid, bad.state, bad.reason); err == nil {
			t.Errorf("state %q reason %q accepted", bad.state, bad.reason)
		}
	}
	if n := get(); n.State != domain.NotificationsPeriodic || n.Reason != "quota" {
		t.Errorf("after refused input: %+v", n)
	}
}

func TestTenantNotifiedAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	pool := pgtest.Pool(t)
	st := postgres.New(pool).WithClock(func() time.Time { return now })
	tid, other := activeTenant(t, st, true), activeTenant(t, st, true)
	round := now
	after := func(tid string) bool {
		t.Helper()
		ok, err := st.TenantNotifiedAfter(ctx, tid, round)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if after(tid) {
		t.Error("no notification state yet, but notified")
	}
	for _, id := range []string{tid, other} {
		if err := st.TenantNotificationsSet(ctx, id, domain.NotificationsSubscribed, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The server records each accepted notification in notified_at.
	notify := func(id string, at time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE tenant_notifications SET notified_at = $2, notifications = notifications + 1 WHERE tenant_id = $1`, id, at); err != nil {
			t.Fatal(err)
		}
	}
	notify(tid, round.Add(-time.Second))
	if after(tid) {
		t.Error("a notification before the round asks for another round")
	}
	notify(other, round.Add(time.Second))
	if after(tid) {
		t.Error("another tenant's notification asks for a round of this one")
	}
	notify(tid, round.Add(time.Second))
	if !after(tid) {
		t.Error("a notification during the round does not ask for another round")
	}
}

func TestSubscriptionTenantsUnsubscribed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	never := activeTenant(t, st, true)
	activeTenant(t, st, false) // not synced yet: its first full round subscribes it
	quotaOld, quotaNew, stuck, subscribed := activeTenant(t, st, true), activeTenant(t, st, true), activeTenant(t, st, true), activeTenant(t, st, true)
	gone := activeTenant(t, st, true)
	if err := st.TenantSetStatus(ctx, gone, domain.TenantDisconnected, "disconnected", "admin"); err != nil {
		t.Fatal(err)
	}
	set := func(tid string, s domain.NotificationState, reason string) {
		t.Helper()
		if err := st.TenantNotificationsSet(ctx, tid, s, reason); err != nil {
			t.Fatal(err)
		}
	}
	set(quotaOld, domain.NotificationsPeriodic, domain.NotificationReasonQuota)
	set(stuck, domain.NotificationsSubscribing, "")
	set(gone, domain.NotificationsPeriodic, domain.NotificationReasonDisabled)
	*now = now.Add(5 * time.Hour)
	set(quotaNew, domain.NotificationsPeriodic, domain.NotificationReasonQuota)
	set(subscribed, domain.NotificationsSubscribed, "")
	*now = now.Add(2 * time.Hour)
	got, err := st.SubscriptionTenantsUnsubscribed(ctx, now.Add(-6*time.Hour), now.Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{never, quotaOld, stuck}
	slices.Sort(want[1:])
	gotSorted := slices.Clone(got)
	if len(got) > 0 {
		slices.Sort(gotSorted[1:])
	}
	if len(got) != 3 || got[0] != never || !slices.Equal(gotSorted, want) {
		t.Errorf("unsubscribed: %v, want %v (never tried first)", got, want)
	}
	if got, err := st.SubscriptionTenantsUnsubscribed(ctx, now.Add(-6*time.Hour), now.Add(-time.Hour), 1); err != nil || len(got) != 1 {
		t.Errorf("limit 1: %v, %v", got, err)
	}
}
