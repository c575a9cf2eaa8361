package domain

import "time"

// Subscription is one of a tenant's Graph change notification
// subscriptions as tenantsync keeps it (protocol §7, issue 17). The
// clientState secret itself is never kept: only its SHA-256.
type Subscription struct {
	ID              string     `db:"id"` // Graph's subscription id
	TenantID        string     `db:"tenant_id"`
	Resource        string     `db:"resource"` // users or groups
	ClientStateHash []byte     `db:"client_state_hash"`
	ExpiresAt       time.Time  `db:"expires_at"`
	CreatedAt       time.Time  `db:"created_at"`
	RenewedAt       *time.Time `db:"renewed_at"`
}

// NotificationState says whether a tenant's changes arrive by change
// notification or by the periodic delta round only.
type NotificationState string

// Notification states.
const (
	// NotificationsSubscribing: subscriptions are being created.
	NotificationsSubscribing NotificationState = "subscribing"
	// NotificationsSubscribed: both subscriptions are live; the periodic
	// round is the safety net (SYNC_INTERVAL_SUBSCRIBED).
	NotificationsSubscribed NotificationState = "subscribed"
	// NotificationsPeriodic: no live subscriptions; Reason says why.
	NotificationsPeriodic NotificationState = "periodic"
)

// Reasons a tenant is synced periodically only.
const (
	NotificationReasonQuota       = "quota"       // Graph's subscription quota is reached
	NotificationReasonPermission  = "permission"  // the app may not subscribe in the tenant
	NotificationReasonUnreachable = "unreachable" // Graph could not validate our notification URL
	NotificationReasonError       = "error"       // any other failure
	NotificationReasonDisabled    = "disabled"    // the tenant is not active
)

// TenantNotifications is a tenant's notification state.
type TenantNotifications struct {
	TenantID string            `db:"tenant_id"`
	State    NotificationState `db:"state"`
	Reason   string            `db:"reason"`
	// Since is when the state last changed; for a tenant not subscribed it
	// is the last attempt to subscribe.
	Since         time.Time  `db:"since"`
	NotifiedAt    *time.Time `db:"notified_at"`
	Notifications int64      `db:"notifications"`
}
