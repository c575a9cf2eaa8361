package domain

import (
	"encoding/json"
	"time"
)

// EventType names a change-feed event (docs/events.md lists each with its
// payload).
type EventType string

// Directory events: one per change the sync applies.
const (
	UserCreated        EventType = "user.created"
	UserUpdated        EventType = "user.updated"
	UserDisabled       EventType = "user.disabled"
	UserEnabled        EventType = "user.enabled"
	UserDeleted        EventType = "user.deleted" // soft: in the tenant's deleted items, restorable
	UserRemoved        EventType = "user.removed" // hard, or no longer seen by a full round
	UserRestored       EventType = "user.restored"
	GroupCreated       EventType = "group.created"
	GroupUpdated       EventType = "group.updated"
	GroupDeleted       EventType = "group.deleted"
	GroupMemberAdded   EventType = "group.member_added"
	GroupMemberRemoved EventType = "group.member_removed"
)

// Tenant lifecycle events.
const (
	TenantConnectedEvent               EventType = "tenant.connected"
	TenantActiveEvent                  EventType = "tenant.active"
	TenantFailingEvent                 EventType = "tenant.failing"
	TenantConsentRevokedEvent          EventType = "tenant.consent_revoked"
	TenantInsufficientPermissionsEvent EventType = "tenant.insufficient_permissions"
	TenantDisconnectedEvent            EventType = "tenant.disconnected"
	TenantPurgedEvent                  EventType = "tenant.purged"
)

// TenantStatusEvent names the event of a tenant's move to status; pending
// has none (a consent, which leads there, is tenant.connected).
func TenantStatusEvent(status TenantStatus) (EventType, bool) {
	switch status {
	case TenantActive:
		return TenantActiveEvent, true
	case TenantFailing:
		return TenantFailingEvent, true
	case TenantConsentRevoked:
		return TenantConsentRevokedEvent, true
	case TenantInsufficientPermissions:
		return TenantInsufficientPermissionsEvent, true
	case TenantDisconnected:
		return TenantDisconnectedEvent, true
	}
	return "", false
}

// EventTypes lists every event type, directory first.
var EventTypes = []EventType{
	UserCreated, UserUpdated, UserDisabled, UserEnabled, UserDeleted, UserRemoved, UserRestored,
	GroupCreated, GroupUpdated, GroupDeleted, GroupMemberAdded, GroupMemberRemoved,
	TenantConnectedEvent, TenantActiveEvent, TenantFailingEvent, TenantConsentRevokedEvent,
	TenantInsufficientPermissionsEvent, TenantDisconnectedEvent, TenantPurgedEvent,
}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool {
	for _, v := range EventTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Event is one entry of the change feed: the payload handed to API readers
// and webhook endpoints is {"id","type","tenant_id","occurred_at","data"}.
type Event struct {
	ID         string          `json:"id"`
	Type       EventType       `json:"type"`
	TenantID   string          `json:"tenant_id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	// Pos is the event's place in the feed (not part of the payload).
	Pos EventPos `json:"-"`
}

// EventPos is a position in the change feed: the writing transaction's id
// and the event's sequence number, compared in that order. The zero value
// is the feed's start.
type EventPos struct {
	Xid uint64
	Seq int64
}

// Less orders positions.
func (p EventPos) Less(q EventPos) bool {
	return p.Xid < q.Xid || p.Xid == q.Xid && p.Seq < q.Seq
}
