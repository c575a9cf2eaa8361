package graph

import (
	"errors"

	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"

	"github.com/tenantsync/tenantsync/internal/retry"
)

// ErrorKind says what a Graph failure means for the sync.
type ErrorKind int

// Graph error kinds (protocol §5.5, §5.6), decided by status and code, never
// by message.
const (
	// ErrOther is any other failure.
	ErrOther ErrorKind = iota
	// ErrThrottled is 429; RetryAfter says how long to wait.
	ErrThrottled
	// ErrUnavailable is 5xx or repeated connection failures.
	ErrUnavailable
	// ErrUnauthorized is 401 other than Authorization_IdentityNotFound,
	// after one token refresh.
	ErrUnauthorized
	// ErrConsentRevoked is 401 Authorization_IdentityNotFound: the app's
	// service principal is gone from the tenant.
	ErrConsentRevoked
	// ErrInsufficientPermissions is 403: the token lacks a required role.
	ErrInsufficientPermissions
	// ErrResyncRequired is 400 syncStateNotFound, resyncRequired or
	// Directory_ExpiredPageToken, or 410 Gone: the delta or skip token is no
	// longer valid and a full round must start over (protocol §5.2).
	ErrResyncRequired
	// ErrForeignLink is a nextLink or deltaLink off GRAPH_BASE_URL.
	ErrForeignLink
	// ErrVanished is 404 on a subscription: it expired or was removed.
	ErrVanished
	// ErrQuotaExceeded is 403 on creating a subscription beyond a quota.
	ErrQuotaExceeded
	// ErrValidationFailed is 400 on creating a subscription whose
	// notification or lifecycle URL failed Graph's validation handshake.
	ErrValidationFailed
)

var errorKindNames = map[ErrorKind]string{
	ErrOther: "error", ErrThrottled: "throttled", ErrUnavailable: "unavailable", ErrUnauthorized: "unauthorized",
	ErrConsentRevoked: "consent revoked", ErrInsufficientPermissions: "insufficient permissions",
	ErrResyncRequired: "resync required", ErrForeignLink: "foreign link", ErrVanished: "vanished",
	ErrQuotaExceeded: "quota exceeded", ErrValidationFailed: "validation failed",
}

func (k ErrorKind) String() string { return errorKindNames[k] }

// Error is a failed Graph request.
type Error struct {
	Kind       ErrorKind
	Status     int
	Code       string // Graph's error.code
	Message    string // Graph's error.message, for people; never branched on
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("graph: %s: %s", e.Kind, e.Message)
	}
	return fmt.Sprintf("graph: %s (HTTP %d %s): %s", e.Kind, e.Status, e.Code, e.Message)
}

// faultKinds maps Graph's error kinds to the domain's vocabulary.
var faultKinds = map[ErrorKind]domain.FaultKind{
	ErrOther: domain.FaultOther, ErrThrottled: domain.FaultThrottled, ErrUnavailable: domain.FaultUnavailable,
	ErrUnauthorized: domain.FaultUnauthorized, ErrConsentRevoked: domain.FaultConsentRevoked,
	ErrInsufficientPermissions: domain.FaultInsufficientPermissions, ErrResyncRequired: domain.FaultResyncRequired,
	ErrForeignLink: domain.FaultForeignLink, ErrVanished: domain.FaultVanished, ErrQuotaExceeded: domain.FaultQuotaExceeded,
	ErrValidationFailed: domain.FaultValidationFailed,
}

// fault gives err the domain's vocabulary at the client's boundary: a
// *Error becomes a *domain.Fault wrapping it; a Fault from the token source
// and any other error pass unchanged.
func fault(err error) error {
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	if _, ok := domain.FaultOf(err); ok {
		return err
	}
	return &domain.Fault{Kind: faultKinds[e.Kind], Code: e.Code, RetryAfter: e.RetryAfter, Err: err}
}

// resyncCodes are matched case-insensitively: protocol §5.2 quotes both
// syncStateNotFound and SyncStateNotFound.
var resyncCodes = []string{"syncstatenotfound", "resyncrequired", "syncstateinvalid", "directory_expiredpagetoken"}

func readError(resp *http.Response) *Error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &body)
	e := &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: firstLine(body.Error.Message)}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	code := strings.ToLower(e.Code)
	switch {
	case resp.StatusCode == http.StatusGone:
		e.Kind = ErrResyncRequired
	case resp.StatusCode == http.StatusBadRequest && containsFold(resyncCodes, code):
		e.Kind = ErrResyncRequired
	case resp.StatusCode == http.StatusUnauthorized && code == "authorization_identitynotfound":
		e.Kind = ErrConsentRevoked
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case resp.StatusCode == http.StatusForbidden:
		e.Kind = ErrInsufficientPermissions
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = ErrThrottled
	case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout,
		resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusInternalServerError:
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrOther
	}
	if e.Kind == ErrThrottled || e.Kind == ErrUnavailable {
		e.RetryAfter = retry.After(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
