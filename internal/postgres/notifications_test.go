package postgres_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// Subscriptions are found for a whole batch at once; accepted notifications
// set notified_at and add to the count, creating the row a tenant may still
// lack; the status reads every tenant of a page in one query; the counts
// cover the tenants that sync (issue 17).
func TestNotificationStatusAndCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	live, fresh, pending := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, id := range []string{live, fresh} {
		pgtest.ActiveTenant(t, st, id)
	}
	if _, err := st.TenantUpsertConsented(ctx, pending, "admin@pending.example", "oid"); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("secret"))
	subUsers, subGroups := uuid.NewString(), uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO graph_subscriptions (id, tenant_id, resource, client_state_hash, expires_at)
		VALUES ($1, $3, 'users', $4, now() + interval '1 day'), ($2, $3, 'groups', $4, now() + interval '2 days')`,
		subUsers, subGroups, live, hash[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO tenant_notifications (tenant_id, state) VALUES ($1, 'subscribed')`, live); err != nil {
		t.Fatal(err)
	}

	subs, err := st.GraphSubscriptionsByID(ctx, []string{subUsers, "no-such-subscription"})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != subUsers || subs[0].TenantID != live || subs[0].Resource != "users" ||
		string(subs[0].ClientStateHash) != string(hash[:]) {
		t.Errorf("subscriptions by id: %+v", subs)
	}

	counts := func() []postgres.NotificationCount {
		t.Helper()
		c, err := st.NotificationCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := []postgres.NotificationCount{{State: "subscribed", N: 1}, {State: "periodic", Reason: "off", N: 1}}
	if d := cmp.Diff(want, counts()); d != "" {
		t.Errorf("counts before (-want +got):\n%s", d)
	}

	if err := st.TenantNotificationsRecord(ctx, map[string]int{live: 3, fresh: 2}); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantNotificationsRecord(ctx, map[string]int{live: 1}); err != nil {
		t.Fatal(err)
	}
	unknown := uuid.NewString()
	got, err := st.TenantNotifications(ctx, []string{live, fresh, unknown})
	if err != nil {
		t.Fatal(err)
	}
	if n := got[live]; n.State != "subscribed" || n.Notifications != 4 || n.LastNotificationAt == nil || n.Since == nil ||
		len(n.Subscriptions) != 2 || n.Subscriptions[0].Resource != "groups" || n.Subscriptions[1].Resource != "users" {
		t.Errorf("live tenant: %+v", n)
	}
	if n := got[fresh]; n.State != "subscribed" || n.Notifications != 2 || n.LastNotificationAt == nil || len(n.Subscriptions) != 0 {
		t.Errorf("tenant whose row the notification created: %+v", n)
	}
	if n := got[unknown]; n.State != "periodic" || n.Reason != "off" || n.Since != nil {
		t.Errorf("tenant without a row: %+v", n)
	}
	want = []postgres.NotificationCount{{State: "subscribed", N: 2}}
	if d := cmp.Diff(want, counts()); d != "" {
		t.Errorf("counts after (-want +got):\n%s", d)
	}
	// A tenant that stops syncing leaves the counts.
	if err := st.TenantSetStatus(ctx, fresh, domain.TenantDisconnected, "test", "test"); err != nil {
		t.Fatal(err)
	}
	want = []postgres.NotificationCount{{State: "subscribed", N: 1}}
	if d := cmp.Diff(want, counts()); d != "" {
		t.Errorf("counts after a disconnect (-want +got):\n%s", d)
	}
}
