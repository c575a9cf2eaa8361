package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Graph change notification subscriptions and each tenant's notification
// state (migrations/00095_change_notifications.sql, protocol §7).

const subscriptionList = `
SELECT id, tenant_id::text, resource, client_state_hash, expires_at, created_at, renewed_at
FROM graph_subscriptions WHERE tenant_id = $1 ORDER BY resource`

// SubscriptionList returns the tenant's subscriptions, by resource.
func (s *Store) SubscriptionList(ctx context.Context, tenantID string) ([]domain.Subscription, error) {
	rows, err := s.db.Query(ctx, subscriptionList, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[domain.Subscription])
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// A tenant has one subscription per resource: a new one (re-created after
// it vanished) replaces the old row.
const subscriptionSave = `
INSERT INTO graph_subscriptions (id, tenant_id, resource, client_state_hash, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, resource) DO UPDATE SET id = EXCLUDED.id, client_state_hash = EXCLUDED.client_state_hash,
	expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, renewed_at = NULL`

// SubscriptionSave records a subscription Graph created, replacing the
// tenant's previous one for the same resource.
func (s *Store) SubscriptionSave(ctx context.Context, sub domain.Subscription) error {
	if len(sub.ClientStateHash) != 32 {
		return fmt.Errorf("save subscription of tenant %s: the client state hash must be a SHA-256", sub.TenantID)
	}
	if _, err := s.db.Exec(ctx, subscriptionSave, sub.ID, sub.TenantID, sub.Resource, sub.ClientStateHash,
		sub.ExpiresAt.UTC(), s.now().UTC()); err != nil {
		return fmt.Errorf("save %s subscription of tenant %s: %w", sub.Resource, sub.TenantID, err)
	}
	return nil
}

const subscriptionRenewed = `
UPDATE graph_subscriptions SET expires_at = $3, renewed_at = $4 WHERE tenant_id = $1 AND id = $2`

// SubscriptionRenewed records a subscription's new expiration;
// domain.ErrNotFound when the tenant has no such subscription.
func (s *Store) SubscriptionRenewed(ctx context.Context, tenantID, id string, expires time.Time) error {
	tag, err := s.db.Exec(ctx, subscriptionRenewed, tenantID, id, expires.UTC(), s.now().UTC())
	if err != nil {
		return fmt.Errorf("renew subscription %s of tenant %s: %w", id, tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renew subscription %s of tenant %s: %w", id, tenantID, domain.ErrNotFound)
	}
	return nil
}

// SubscriptionDelete forgets one of the tenant's subscriptions; one
// already gone is not an error.
func (s *Store) SubscriptionDelete(ctx context.Context, tenantID, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM graph_subscriptions WHERE tenant_id = $1 AND id = $2`, tenantID, id); err != nil {
		return fmt.Errorf("delete subscription %s of tenant %s: %w", id, tenantID, err)
	}
	return nil
}

// A tenant is due when one of its subscriptions expires before $1, or when
// it keeps subscriptions but is no longer synced (active or failing): a
// removal whose job was swallowed by one still finishing is caught here.
const subscriptionTenantsDue = `
SELECT s.tenant_id::text FROM graph_subscriptions s
JOIN tenants t ON t.id = s.tenant_id
WHERE s.expires_at < $1 OR t.status NOT IN ('active', 'failing')
GROUP BY s.tenant_id
ORDER BY min(s.expires_at), s.tenant_id
LIMIT $2`

// SubscriptionTenantsDue returns up to limit tenants whose subscriptions
// need the worker: one expires before before, or the tenant is no longer
// synced. The nearest expiry first.
func (s *Store) SubscriptionTenantsDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return s.tenantIDs(ctx, "list tenants with subscriptions due", subscriptionTenantsDue, before.UTC(), limit)
}

// A tenant that is active and synced once (its first full round done) but
// has no live subscriptions: never tried, its periodic state's last attempt
// older than retryBefore, or stuck subscribing since before stuckBefore (a
// worker that died mid-way). The oldest attempt first.
const subscriptionTenantsUnsubscribed = `
SELECT t.id::text FROM tenants t
LEFT JOIN tenant_notifications n ON n.tenant_id = t.id
WHERE t.status = 'active' AND t.last_synced_at IS NOT NULL AND (
	n.tenant_id IS NULL
	OR (n.state = 'periodic' AND n.since < $1)
	OR (n.state = 'subscribing' AND n.since < $2))
ORDER BY n.since NULLS FIRST, t.id
LIMIT $3`

// SubscriptionTenantsUnsubscribed returns up to limit active tenants
// without live subscriptions whose last attempt is old enough to try again.
func (s *Store) SubscriptionTenantsUnsubscribed(ctx context.Context, retryBefore, stuckBefore time.Time, limit int) ([]string, error) {
	return s.tenantIDs(ctx, "list unsubscribed tenants", subscriptionTenantsUnsubscribed, retryBefore.UTC(), stuckBefore.UTC(), limit)
}

func (s *Store) tenantIDs(ctx context.Context, op, query string, args ...any) ([]string, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return ids, nil
}

const tenantNotificationsGet = `
SELECT tenant_id::text, state, reason, since, notified_at, notifications
FROM tenant_notifications WHERE tenant_id = $1`

// TenantNotificationsGet returns the tenant's notification state;
// domain.ErrNotFound when it was never subscribed.
func (s *Store) TenantNotificationsGet(ctx context.Context, tenantID string) (domain.TenantNotifications, error) {
	rows, err := s.db.Query(ctx, tenantNotificationsGet, tenantID)
	if err != nil {
		return domain.TenantNotifications{}, fmt.Errorf("get notification state of tenant %s: %w", tenantID, err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[domain.TenantNotifications])
	if err != nil {
		return domain.TenantNotifications{}, fmt.Errorf("get notification state of tenant %s: %w", tenantID, notFound(err))
	}
	return n, nil
}

// since moves when the state or reason changes, and on every attempt that
// leaves the tenant periodic: for such a tenant it is the last attempt,
// which the retry of SubscriptionTenantsUnsubscribed is measured from.
const tenantNotificationsSet = `
INSERT INTO tenant_notifications (tenant_id, state, reason, since) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason,
	since = CASE WHEN tenant_notifications.state = EXCLUDED.state AND tenant_notifications.reason = EXCLUDED.reason
		AND EXCLUDED.state <> 'periodic' THEN tenant_notifications.since ELSE EXCLUDED.since END`

// TenantNotificationsSet records the tenant's notification state and, for
// periodic, why.
func (s *Store) TenantNotificationsSet(ctx context.Context, tenantID string, state domain.NotificationState, reason string) error {
	switch state {
	case domain.NotificationsSubscribing, domain.NotificationsSubscribed:
		if reason != "" {
			return fmt.Errorf("set notification state of tenant %s: state %s takes no reason", tenantID, state)
		}
	case domain.NotificationsPeriodic:
		switch reason {
		case domain.NotificationReasonQuota, domain.NotificationReasonPermission, domain.NotificationReasonUnreachable,
			domain.NotificationReasonError, domain.NotificationReasonDisabled:
		default:
			return fmt.Errorf("set notification state of tenant %s: unknown reason %q", tenantID, reason)
		}
	default:
		return fmt.Errorf("set notification state of tenant %s: unknown state %q", tenantID, state)
	}
	if _, err := s.db.Exec(ctx, tenantNotificationsSet, tenantID, string(state), reason, s.now().UTC()); err != nil {
		return fmt.Errorf("set notification state of tenant %s: %w", tenantID, err)
	}
	return nil
}

// TenantNotifiedAfter reports whether a notification asked for a round of
// the tenant after t (tenant_notifications.notified_at > t): a sync round
// that started at t then runs once more, so that no notification is lost.
// It locks the tenant's row FOR SHARE until the transaction ends: a
// notification being recorded (the server updates the row, then inserts its
// sync job) is waited for and seen, and one recorded later waits for this
// transaction, so it finds the round's job completed and its own insert
// goes through. Call it before completing the job in the same transaction;
// completing first could deadlock with the server's insert.
func (s *Store) TenantNotifiedAfter(ctx context.Context, tenantID string, t time.Time) (bool, error) {
	var after *bool
	err := s.db.QueryRow(ctx, `SELECT notified_at > $2 FROM tenant_notifications WHERE tenant_id = $1 FOR SHARE`,
		tenantID, t.UTC()).Scan(&after)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check notifications of tenant %s: %w", tenantID, err)
	}
	return after != nil && *after, nil
}
