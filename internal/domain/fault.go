package domain

import (
	"errors"
	"time"
)

// FaultKind says what a failure of Microsoft Entra ID or Microsoft Graph
// means for a tenant. The clients (internal/entra, internal/graph) decide
// the kind from status codes and error codes, never from messages; every
// other package branches on the kind.
type FaultKind uint8

// Fault kinds.
const (
	// FaultOther is any other failure: counted and backed off.
	FaultOther FaultKind = iota
	// FaultThrottled: wait RetryAfter before the next request for the tenant.
	FaultThrottled
	// FaultUnavailable: a 5xx or a network failure; try again later.
	FaultUnavailable
	// FaultResyncRequired: the delta or skip token is no longer valid; a new
	// full round must start.
	FaultResyncRequired
	// FaultConsentMissing: the token endpoint does not find the app in the
	// tenant (never consented, removed, or a fresh consent not replicated
	// yet): AADSTS700016, 7000229.
	FaultConsentMissing
	// FaultConsentRevoked: Graph no longer knows the app's service principal
	// (401 Authorization_IdentityNotFound).
	FaultConsentRevoked
	// FaultServicePrincipalDisabled: the customer disabled the app
	// (AADSTS7000112).
	FaultServicePrincipalDisabled
	// FaultTenantNotFound: the tenant does not exist (AADSTS90002, 900023).
	FaultTenantNotFound
	// FaultInsufficientPermissions: the token lacks a required role (403).
	FaultInsufficientPermissions
	// FaultUnauthorized: Graph refused the token itself (401), after one
	// fresh token.
	FaultUnauthorized
	// FaultAppCredentialBroken: the app's own secret, certificate or
	// assertion is refused. An operator's problem, not the tenant's.
	FaultAppCredentialBroken
	// FaultForeignLink: a nextLink or deltaLink off the configured Graph host.
	FaultForeignLink
	// FaultVanished: the Graph object addressed is gone (404), e.g. a change
	// notification subscription that expired or was removed (protocol §7).
	FaultVanished
	// FaultQuotaExceeded: Graph refused to create a subscription beyond one
	// of its quotas (403 naming the limit, protocol §7).
	FaultQuotaExceeded
	// FaultValidationFailed: Graph could not validate a subscription's
	// notification or lifecycle URL (400): the server's endpoint was not
	// reachable or did not answer the handshake (protocol §7).
	FaultValidationFailed
)

var faultKindNames = [...]string{
	FaultOther: "error", FaultThrottled: "throttled", FaultUnavailable: "unavailable",
	FaultResyncRequired: "resync required", FaultConsentMissing: "consent missing",
	FaultConsentRevoked: "consent revoked", FaultServicePrincipalDisabled: "service principal disabled",
	FaultTenantNotFound: "tenant not found", FaultInsufficientPermissions: "insufficient permissions",
	FaultUnauthorized: "unauthorized", FaultAppCredentialBroken: "app credential broken",
	FaultForeignLink: "foreign link", FaultVanished: "vanished", FaultQuotaExceeded: "quota exceeded",
	FaultValidationFailed: "validation failed",
}

func (k FaultKind) String() string {
	if int(k) < len(faultKindNames) {
		return faultKindNames[k]
	}
	return "error"
}

// AppGone reports whether the kind says the app is no longer in the tenant:
// the verdict that revokes the tenant (after a fresh token confirms it).
func (k FaultKind) AppGone() bool {
	switch k {
	case FaultConsentMissing, FaultConsentRevoked, FaultServicePrincipalDisabled, FaultTenantNotFound:
		return true
	}
	return false
}

// Fault is a classified failure of Entra ID or Graph. It wraps the client's
// own error (with the details for people and logs) in Err.
type Fault struct {
	Kind       FaultKind
	Code       string        // the AADSTS code or Graph's error code, for sync_runs and reasons
	RetryAfter time.Duration // how long the service asked to wait, or 0
	Err        error
}

func (f *Fault) Error() string { return f.Err.Error() }

// Unwrap returns the client's own error.
func (f *Fault) Unwrap() error { return f.Err }

// FaultOf returns err's Fault, if any.
func FaultOf(err error) (*Fault, bool) {
	var f *Fault
	ok := errors.As(err, &f)
	return f, ok
}

// FaultKindOf is err's fault kind: FaultOther for errors that are no Fault.
func FaultKindOf(err error) FaultKind {
	if f, ok := FaultOf(err); ok {
		return f.Kind
	}
	return FaultOther
}

// RetryAfterOf is how long err asks to wait before the tenant's next
// request, or 0.
func RetryAfterOf(err error) time.Duration {
	if f, ok := FaultOf(err); ok {
		return f.RetryAfter
	}
	return 0
}
