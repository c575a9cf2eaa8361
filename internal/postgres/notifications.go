package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// NotificationReasonOff is the reason shown for a tenant without a
// tenant_notifications row, one the worker keeps no subscriptions for:
// CHANGE_NOTIFICATIONS is off, or the worker has not come to the tenant yet.
const NotificationReasonOff = "off"

// NotificationStatus says whether a tenant is near-real-time (subscribed
// to Graph change notifications) or on periodic sync, and why.
type NotificationStatus struct {
	State  domain.NotificationState
	Reason string // why periodic: quota, permission, unreachable, error, disabled or off
	// Since is when the state last changed; nil for a tenant without a row.
	Since *time.Time
	// LastNotificationAt is when the server last accepted a notification.
	LastNotificationAt *time.Time
	// Notifications counts the notifications accepted for the tenant.
	Notifications int64
	// Subscriptions are the tenant's live subscriptions, by resource.
	Subscriptions []SubscriptionExpiry
}

// SubscriptionExpiry is one subscription's resource and expiry.
type SubscriptionExpiry struct {
	Resource  string
	ExpiresAt time.Time
}

// notificationsOff is the status of a tenant without a row.
func notificationsOff() NotificationStatus {
	return NotificationStatus{State: domain.NotificationsPeriodic, Reason: NotificationReasonOff}
}

const graphSubscriptionsByID = `SELECT id, tenant_id::text AS tenant_id, resource, client_state_hash, expires_at, created_at, renewed_at
FROM graph_subscriptions WHERE id = ANY($1::text[])`

// GraphSubscriptionsByID returns the subscriptions among ids, in one query
// for a whole batch of notifications; unknown IDs are left out. The
// subscription's tenant is what scopes everything the caller does next.
func (s *Store) GraphSubscriptionsByID(ctx context.Context, ids []string) ([]domain.Subscription, error) {
	rows, err := s.db.Query(ctx, graphSubscriptionsByID, ids)
	if err != nil {
		return nil, fmt.Errorf("graph subscriptions by id: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[domain.Subscription])
	if err != nil {
		return nil, fmt.Errorf("graph subscriptions by id: %w", err)
	}
	return out, nil
}

// A tenant with a live subscription normally has its row already (the
// worker writes both); the insert covers a notification that wins that race,
// so the coalescing flag is never lost. Tenants are sorted by the caller so
// concurrent batches lock rows in one order.
const tenantNotificationsRecord = `
INSERT INTO tenant_notifications AS n (tenant_id, state, notified_at, notifications)
SELECT a.tenant_id, 'subscribed', now(), a.n
FROM unnest($1::uuid[], $2::bigint[]) AS a (tenant_id, n)
ON CONFLICT (tenant_id) DO UPDATE SET notified_at = now(), notifications = n.notifications + EXCLUDED.notifications`

// TenantNotificationsRecord notes accepted notifications, n per tenant ID:
// notified_at becomes now (the flag a running sync round checks, migration
// 00095) and the tenant's count grows by n.
func (s *Store) TenantNotificationsRecord(ctx context.Context, n map[string]int) error {
	ids := make([]string, 0, len(n))
	for id := range n {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	counts := make([]int64, len(ids))
	for i, id := range ids {
		counts[i] = int64(n[id])
	}
	if _, err := s.db.Exec(ctx, tenantNotificationsRecord, ids, counts); err != nil {
		return fmt.Errorf("record notifications of %d tenants: %w", len(ids), err)
	}
	return nil
}

const tenantNotificationsStatus = `
SELECT t.id::text, n.state, n.reason, n.since, n.notified_at, n.notifications,
	coalesce((SELECT array_agg(s.resource ORDER BY s.resource) FROM graph_subscriptions s WHERE s.tenant_id = t.id), '{}'),
	coalesce((SELECT array_agg(s.expires_at ORDER BY s.resource) FROM graph_subscriptions s WHERE s.tenant_id = t.id), '{}')
FROM unnest($1::uuid[]) AS t (id)
LEFT JOIN tenant_notifications n ON n.tenant_id = t.id`

// TenantNotifications returns the notification status of each of the
// tenant IDs, by ID; a tenant without a row is periodic for reason "off"
// (NotificationReasonOff).
func (s *Store) TenantNotifications(ctx context.Context, ids []string) (map[string]NotificationStatus, error) {
	rows, err := s.db.Query(ctx, tenantNotificationsStatus, ids)
	if err != nil {
		return nil, fmt.Errorf("notification status of %d tenants: %w", len(ids), err)
	}
	out := make(map[string]NotificationStatus, len(ids))
	var (
		id            string
		state, reason *string
		since, at     *time.Time
		count         *int64
		resources     []string
		expiries      []time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &state, &reason, &since, &at, &count, &resources, &expiries}, func() error {
		st := notificationsOff()
		if state != nil {
			st = NotificationStatus{State: domain.NotificationState(*state), Reason: *reason, Since: since, LastNotificationAt: at, Notifications: *count}
		}
		for i, r := range resources {
			st.Subscriptions = append(st.Subscriptions, SubscriptionExpiry{Resource: r, ExpiresAt: expiries[i]})
		}
		out[id] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notification status of %d tenants: %w", len(ids), err)
	}
	return out, nil
}

// TenantNotificationsOne returns one tenant's notification status.
func (s *Store) TenantNotificationsOne(ctx context.Context, id string) (NotificationStatus, error) {
	m, err := s.TenantNotifications(ctx, []string{id})
	if err != nil {
		return NotificationStatus{}, err
	}
	return m[id], nil
}

// NotificationCount is how many tenants share one state and reason.
type NotificationCount struct {
	State  domain.NotificationState
	Reason string
	N      int
}

// Tenants that sync (active or failing) count; a tenant without a row is
// periodic for reason "off".
const notificationCounts = `
SELECT coalesce(n.state, 'periodic'), CASE WHEN n.state IS NULL THEN 'off' ELSE n.reason END, count(*)
FROM tenants t LEFT JOIN tenant_notifications n ON n.tenant_id = t.id
WHERE t.status IN ('active', 'failing')
GROUP BY 1, 2 ORDER BY 1 DESC, 2`

// NotificationCounts counts the tenants that sync by notification state and
// reason: how many are near-real-time and why the others are periodic.
func (s *Store) NotificationCounts(ctx context.Context) ([]NotificationCount, error) {
	rows, err := s.db.Query(ctx, notificationCounts)
	if err != nil {
		return nil, fmt.Errorf("notification counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[NotificationCount])
	if err != nil {
		return nil, fmt.Errorf("notification counts: %w", err)
	}
	return out, nil
}
