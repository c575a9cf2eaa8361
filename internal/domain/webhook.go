package domain

import "time"

// WebhookEndpoint is a URL the change feed is delivered to, signed per
// Standard Webhooks (docs/webhooks.md).
type WebhookEndpoint struct {
	ID  string
	URL string
	// EventTypes are the types delivered; empty means every type.
	EventTypes     []EventType
	Description    string
	Disabled       bool
	DisabledReason string
	// Secret is the whsec_… signing secret; PreviousSecret, until
	// PreviousSecretExpiresAt, signs too (rotation).
	Secret                  string
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	// Pos is the feed position up to which events were dispatched.
	Pos          EventPos
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Secrets are the secrets that sign a delivery at now: the current one,
// and the previous one while it has not expired.
func (e WebhookEndpoint) Secrets(now time.Time) []string {
	out := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecret)
	}
	return out
}

// DeliveryStatus is where a webhook delivery stands.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"   // not yet acknowledged with a 2xx
	DeliveryDelivered DeliveryStatus = "delivered" // acknowledged
	DeliveryExpired   DeliveryStatus = "expired"   // retention deleted the event first
)

// WebhookDelivery is one event's delivery to one endpoint and the outcome
// of its last attempt.
type WebhookDelivery struct {
	ID             int64
	EndpointID     string
	EventID        string
	TenantID       string
	EventType      EventType
	Pos            EventPos
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time
	LastAttemptAt  *time.Time
	LastStatusCode *int
	LastError      string
	LastLatency    *time.Duration
	DeliveredAt    *time.Time
	CreatedAt      time.Time
	// Event is the event itself when the store loaded it for sending.
	Event *Event
}
