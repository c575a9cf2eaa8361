// Package domain holds tenantsync's core types and errors: tenants and their
// lifecycle, directory objects, sync runs. It imports only the standard
// library; every other package imports it.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// TenantStatus is a tenant's place in the lifecycle of docs/architecture.md.
type TenantStatus string

// The tenant lifecycle: pending → active ⇄ failing → consent_revoked or
// insufficient_permissions → disconnected.
const (
	TenantPending                 TenantStatus = "pending"
	TenantActive                  TenantStatus = "active"
	TenantFailing                 TenantStatus = "failing"
	TenantConsentRevoked          TenantStatus = "consent_revoked"
	TenantInsufficientPermissions TenantStatus = "insufficient_permissions"
	TenantDisconnected            TenantStatus = "disconnected"
)

// TenantStatuses lists every status in lifecycle order.
var TenantStatuses = []TenantStatus{
	TenantPending, TenantActive, TenantFailing, TenantConsentRevoked,
	TenantInsufficientPermissions, TenantDisconnected,
}

// Valid reports whether s is a known status.
func (s TenantStatus) Valid() bool {
	for _, v := range TenantStatuses {
		if s == v {
			return true
		}
	}
	return false
}

// Describe says what the status means to a person.
func (s TenantStatus) Describe() string {
	switch s {
	case TenantPending:
		return "Connecting: we are confirming the consent with Microsoft."
	case TenantActive:
		return "Connected: the directory is being kept in sync."
	case TenantFailing:
		return "Connected, but recent syncs failed; we keep retrying."
	case TenantConsentRevoked:
		return "Consent was removed in Microsoft Entra ID; an administrator needs to reconnect."
	case TenantInsufficientPermissions:
		return "Some permissions are missing; an administrator needs to reconnect and accept all of them."
	case TenantDisconnected:
		return "Disconnected: the directory copy is removed."
	}
	return string(s)
}

// Syncs reports whether a tenant in status s has its directory synced.
// It is the one place that rule is written (the fan-out's SQL mirrors it).
func (s TenantStatus) Syncs() bool { return s == TenantActive || s == TenantFailing }

// transitions is the tenant lifecycle: for each status, the statuses it may
// move to. Consent (to pending) is open from every status, since an admin
// may connect again at any time; only a fresh consent leaves a state that
// needs the customer's admin or a disconnect.
var transitions = map[TenantStatus][]TenantStatus{
	TenantPending:                 {TenantActive, TenantInsufficientPermissions, TenantConsentRevoked, TenantDisconnected},
	TenantActive:                  {TenantFailing, TenantConsentRevoked, TenantInsufficientPermissions, TenantDisconnected, TenantPending},
	TenantFailing:                 {TenantActive, TenantConsentRevoked, TenantInsufficientPermissions, TenantDisconnected, TenantPending},
	TenantConsentRevoked:          {TenantPending, TenantDisconnected},
	TenantInsufficientPermissions: {TenantPending, TenantDisconnected},
	TenantDisconnected:            {TenantPending},
}

// CanBecome reports whether the lifecycle lets a tenant move from s to to.
// Staying in the same status (with a new reason) is always allowed.
func (s TenantStatus) CanBecome(to TenantStatus) bool {
	if s == to {
		return to.Valid()
	}
	for _, v := range transitions[s] {
		if v == to {
			return true
		}
	}
	return false
}

// Transition asks for a tenant to move to To. From, when not empty, names
// the statuses the caller saw and acted on: if the tenant has moved on
// since (an admin connected again while a sync was failing), nothing
// changes.
type Transition struct {
	From   []TenantStatus
	To     TenantStatus
	Reason string
	Actor  string
}

// NeedsAdmin reports whether only the customer's admin can fix the state.
func (s TenantStatus) NeedsAdmin() bool {
	return s == TenantConsentRevoked || s == TenantInsufficientPermissions
}

// Tenant is a customer organization that connected the app.
type Tenant struct {
	ID              string       `db:"id"`
	Status          TenantStatus `db:"status"`
	StatusReason    string       `db:"status_reason"`
	StatusChangedAt time.Time    `db:"status_changed_at"`
	DisplayName     string       `db:"display_name"`
	Domains         []string     `db:"domains"`
	ConsentedAt     *time.Time   `db:"consented_at"`
	ConsentedBy     string       `db:"consented_by"`
	ConsentedByOID  string       `db:"consented_by_oid"`
	GrantedRoles    []string     `db:"granted_roles"`
	LastSyncedAt    *time.Time   `db:"last_synced_at"`
	NextSyncAt      *time.Time   `db:"next_sync_at"`
	FailureCount    int          `db:"failure_count"`
	SyncSuspended   bool         `db:"sync_suspended"`
	CreatedAt       time.Time    `db:"created_at"`
	UpdatedAt       time.Time    `db:"updated_at"`
	UserCount       int          `db:"user_count"`  // users in the directory copy, as of the last sync
	GroupCount      int          `db:"group_count"` // groups in the directory copy, as of the last sync
}

// Name is the display name, or the ID while the name is not known yet.
func (t Tenant) Name() string {
	if t.DisplayName != "" {
		return t.DisplayName
	}
	return t.ID
}

// TenantEvent is one entry of a tenant's history.
type TenantEvent struct {
	ID         int64     `db:"id"`
	TenantID   string    `db:"tenant_id"`
	At         time.Time `db:"at"`
	Kind       string    `db:"kind"`
	FromStatus string    `db:"from_status"`
	ToStatus   string    `db:"to_status"`
	Reason     string    `db:"reason"`
	Actor      string    `db:"actor"`
}

// Event kinds recorded in a tenant's history.
const (
	EventConsented     = "consented"
	EventStatusChanged = "status_changed"
	EventDisconnected  = "disconnected"
	EventPurged        = "purged"
	EventSyncRequested = "sync_requested"
	EventSuspended     = "sync_suspended"
	EventResumed       = "sync_resumed"
)

// Error kinds, mapped to HTTP status codes in one table by the web layer.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalid      = errors.New("invalid")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrGone is a change-feed position older than retention: events after
	// it were deleted, so paging on would silently skip them.
	ErrGone = errors.New("gone")
)

// Error is an error of one of the kinds above with a message for people:
// the web layer shows Message as it is, with no message text to trim.
type Error struct {
	Kind    error  // ErrInvalid, ErrNotFound, …
	Message string // what went wrong, for the person who asked
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap makes errors.Is(err, e.Kind) hold.
func (e *Error) Unwrap() error { return e.Kind }

// Invalidf returns an error of kind ErrInvalid with a message for people.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns an error of kind ErrConflict with a message for people.
func Conflictf(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}

// Message is the message for people that err carries, or "".
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}

// IsGUID reports whether s is a GUID in its 36-character form (tenant,
// object and client IDs), in either case.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
