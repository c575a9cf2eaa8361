// Package onboarding holds the rules of connecting and disconnecting a
// customer organization: connect states bound to the browser session,
// single-use and short-lived; the checks of the admin-consent callback; and
// the transactional hand-over to the worker. It knows no HTTP framework and
// no SQL: it declares the small interfaces it needs (States, Callback,
// Registry) and imports domain only.
package onboarding

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// StateTTL is how long a connect state stays valid after /connect.
const StateTTL = 10 * time.Minute

// personalAccountTenantID is the tenant of personal Microsoft accounts
// (protocol §4.5); they cannot consent for an organization.
const personalAccountTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Directory roles that may grant Microsoft Graph application permissions:
// Global Administrator and Privileged Role Administrator (protocol §1.1, E-GAC;
// Application Administrators cannot grant Graph app roles).
var adminRoles = []string{
	"62e90394-69f5-4237-9190-012177145e10",
	"e8611ab8-c189-46e8-94e1-60213ab1f814",
}

// User is the signed-in person, from a verified ID token.
type User struct {
	TenantID       string
	ObjectID       string
	Username       string
	Name           string
	DirectoryRoles []string // wids
}

// IsAdmin reports whether the user holds a directory role that can grant
// (and therefore withdraw) the app's Graph permissions.
func (u User) IsAdmin() bool {
	for _, r := range u.DirectoryRoles {
		if slices.Contains(adminRoles, strings.ToLower(r)) {
			return true
		}
	}
	return false
}

// Actor names the user in a tenant's history.
func (u User) Actor() string {
	if u.Username != "" {
		return u.Username
	}
	return u.ObjectID
}

// States keeps the pending connect states of one browser session.
type States interface {
	// Put remembers state as issued at issued.
	Put(ctx context.Context, state string, issued time.Time) error
}

// Callback is the storage of one connect callback. The caller binds it to
// one transaction and commits that transaction when FinishConnect returns
// nil or a *ConnectError: a refused callback still spends its state, and a
// successful one costs a single commit.
type Callback interface {
	// Take spends state whoever presents it (single use under concurrent
	// requests too) and reports whether this browser session held it with
	// an issue time in [notBefore, notAfter]. When it did and consent is not
	// nil, Take records the consent as well: the tenant upserted as pending,
	// its event and its verification job. The state is checked where the
	// consent is written, so a good callback needs no extra round trip.
	Take(ctx context.Context, state string, notBefore, notAfter time.Time, consent *Consent) (held bool, t domain.Tenant, err error)
}

// Consent is an admin consent to record: the tenant (lower case) and who
// gave it.
type Consent struct {
	TenantID string
	By       User
}

// Registry records disconnections, each in one transaction together with
// the job that follows it.
type Registry interface {
	// Disconnect marks the tenant disconnected and enqueues the purge of its
	// directory copy; domain.ErrNotFound when it never connected,
	// domain.ErrConflict when it is already disconnected.
	Disconnect(ctx context.Context, tenantID string, by User) error
}

// Config configures a Service.
type Config struct {
	// Registry stores disconnections.
	Registry Registry
	// ConsentURL builds the admin-consent URL for a tenant and state.
	ConsentURL func(tenantID, state string) string
	// AdminLink builds the link a user who may not consent sends to an
	// administrator of tenantID: a page of this service that signs the
	// administrator in and starts their own consent, so that the answer
	// comes back with a state of their session.
	AdminLink func(tenantID string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service applies the connect-flow rules.
type Service struct {
	registry   Registry
	consentURL func(tenantID, state string) string
	adminLink  func(tenantID string) string
	now        func() time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{registry: cfg.Registry, consentURL: cfg.ConsentURL, adminLink: cfg.AdminLink, now: now}
}

// BeginConnect creates a connect state in the user's session and returns the
// admin-consent URL of the user's own tenant to redirect to. A user who
// may not grant the app's Graph permissions gets a *ConnectError
// (ProblemNeedsAdmin) with the link for an administrator, and no state: a
// non-admin never holds one, so cannot bring back a consent as their own.
func (s *Service) BeginConnect(ctx context.Context, states States, u User) (string, error) {
	if !u.IsAdmin() {
		e := refuse(ProblemNeedsAdmin, domain.ErrForbidden)
		e.AdminLink = s.AdminLink(u.TenantID)
		return "", e
	}
	state, err := randomToken()
	if err != nil {
		return "", err
	}
	if err := states.Put(ctx, state, s.now()); err != nil {
		return "", fmt.Errorf("keep connect state: %w", err)
	}
	return s.consentURL(u.TenantID, state), nil
}

// AdminLink is the link for tenantID that a user can send to an
// administrator of their organization (Config.AdminLink).
func (s *Service) AdminLink(tenantID string) string {
	if s.adminLink == nil {
		return ""
	}
	return s.adminLink(tenantID)
}

// Problem is a plain-language class of a failed connect callback.
type Problem string

// Connect problems, each explained on its own page.
const (
	ProblemState            Problem = "state"            // missing, unknown, replayed, other session's or expired
	ProblemNotSignedIn      Problem = "not_signed_in"    // the browser has no signed-in user
	ProblemCancelled        Problem = "cancelled"        // the admin declined (AADSTS65004)
	ProblemNeedsAdmin       Problem = "needs_admin"      // the user is not an admin (AADSTS90094/90095)
	ProblemOtherOrg         Problem = "other_org"        // consent came from, or the account belongs to, another organization
	ProblemNotConsented     Problem = "not_consented"    // admin_consent missing or not True
	ProblemMalformed        Problem = "malformed"        // tenant is not a GUID
	ProblemPersonalAccount  Problem = "personal_account" // a personal Microsoft account
	ProblemEntra            Problem = "entra_error"      // any other error Entra reported
	ProblemNotAdminToRemove Problem = "not_admin_disconnect"
	ProblemSwitchAccount    Problem = "switch_account" // an admin link for another organization than the signed-in one
)

// ConnectError is a refused connect callback. It wraps a domain error kind
// so the web layer picks the status; nothing was stored.
type ConnectError struct {
	Problem Problem
	// Code is Entra's error value, e.g. access_denied (empty unless
	// Problem came from an error redirect).
	Code string
	// Description is Entra's error_description as received: untrusted text,
	// for display (escaped) only.
	Description string
	// AdminLink is the link to send to an admin (ProblemNeedsAdmin).
	AdminLink string
	kind      error
}

func (e *ConnectError) Error() string { return "connect callback refused: " + string(e.Problem) }

// Unwrap returns the domain error kind.
func (e *ConnectError) Unwrap() error { return e.kind }

func refuse(p Problem, kind error) *ConnectError { return &ConnectError{Problem: p, kind: kind} }

// FinishConnect checks an admin-consent callback (protocol §1.1, §1.3) and, when
// every check passes, records the consent and enqueues its verification
// through cb. u is nil when nobody is signed in. The state is spent whatever
// the outcome, and a refusal for the state comes before any other: the
// answer is judged first only so that a good one is recorded in the same
// round trip that spends its state.
func (s *Service) FinishConnect(ctx context.Context, cb Callback, u *User, q url.Values) (domain.Tenant, error) {
	state := q.Get("state")
	if state == "" {
		return domain.Tenant{}, refuse(ProblemState, domain.ErrInvalid)
	}
	var verdict *ConnectError
	var consent *Consent
	if u != nil {
		if verdict = s.judge(*u, q); verdict == nil {
			consent = &Consent{TenantID: strings.ToLower(q.Get("tenant")), By: *u}
		}
	}
	now := s.now()
	held, t, err := cb.Take(ctx, state, now.Add(-StateTTL), now.Add(time.Minute), consent)
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("connect callback: %w", err)
	}
	switch {
	case u == nil:
		return domain.Tenant{}, refuse(ProblemNotSignedIn, domain.ErrUnauthorized)
	case !held:
		return domain.Tenant{}, refuse(ProblemState, domain.ErrInvalid)
	case verdict != nil:
		return domain.Tenant{}, verdict
	}
	return t, nil
}

// judge checks the answer of the admin-consent endpoint for the signed-in
// user u; nil means the consent may be recorded.
func (s *Service) judge(u User, q url.Values) *ConnectError {
	// Error redirects still carry admin_consent=True (protocol §1.1): look at
	// error first.
	if code := q.Get("error"); code != "" {
		e := classify(code, q.Get("error_description"), q.Get("error_uri"))
		e.Code, e.Description = code, q.Get("error_description")
		// A non-admin who leaves Entra's "Need admin approval" page comes
		// back with a decline (likely AADSTS65004; UNVERIFIED, protocol §1.1),
		// indistinguishable from an admin's cancel. The ID token's wids say
		// who it was, so the user learns what actually helps.
		if !u.IsAdmin() && (e.Problem == ProblemCancelled || e.Problem == ProblemEntra && code == "access_denied") {
			e.Problem, e.kind = ProblemNeedsAdmin, domain.ErrForbidden
		}
		if e.Problem == ProblemNeedsAdmin {
			e.AdminLink = s.AdminLink(u.TenantID)
		}
		return e
	}
	if !strings.EqualFold(q.Get("admin_consent"), "true") {
		return refuse(ProblemNotConsented, domain.ErrInvalid)
	}
	// Entra's answer cannot tell a fresh consent from a service principal
	// an admin left in the tenant long ago, and a state proves only this
	// browser: only a user who can grant Graph application permissions
	// (protocol §1.1) may record a consent, whatever the query says.
	if !u.IsAdmin() {
		e := refuse(ProblemNeedsAdmin, domain.ErrForbidden)
		e.AdminLink = s.AdminLink(u.TenantID)
		return e
	}
	tenant := q.Get("tenant")
	if !domain.IsGUID(tenant) {
		return refuse(ProblemMalformed, domain.ErrInvalid)
	}
	if strings.EqualFold(tenant, personalAccountTenantID) {
		return refuse(ProblemPersonalAccount, domain.ErrForbidden)
	}
	// Never trust tenant on its own (protocol §1.3): it must be the tenant the
	// user signed in to.
	if !strings.EqualFold(tenant, u.TenantID) {
		return refuse(ProblemOtherOrg, domain.ErrForbidden)
	}
	return nil
}

var aadstsCode = regexp.MustCompile(`^AADSTS(\d+)`)

// classify maps an error redirect to a problem. The decision rests on
// `error`; the AADSTS number (protocol §1.1 table, E-ERR) only chooses the
// explanation shown, never what is stored, because Microsoft asks clients
// not to branch on error_description (protocol §2.5).
func classify(code, description, errorURI string) *ConnectError {
	n := ""
	if m := aadstsCode.FindStringSubmatch(strings.TrimSpace(description)); m != nil {
		n = m[1]
	} else if u, err := url.Parse(errorURI); err == nil {
		n = u.Query().Get("code")
	}
	switch n {
	case "65004":
		return refuse(ProblemCancelled, domain.ErrInvalid)
	case "90094", "90095":
		return refuse(ProblemNeedsAdmin, domain.ErrForbidden)
	case "50020":
		return refuse(ProblemOtherOrg, domain.ErrForbidden)
	}
	if code == "permission_denied" { // v1 doc wording for a cancel (protocol §1.2)
		return refuse(ProblemCancelled, domain.ErrInvalid)
	}
	return refuse(ProblemEntra, domain.ErrInvalid)
}

// Disconnect marks the user's organization disconnected and enqueues the
// purge of its directory copy. Only a Global Administrator or Privileged
// Role Administrator of that organization may do it.
func (s *Service) Disconnect(ctx context.Context, u *User) error {
	if u == nil {
		return fmt.Errorf("%w: sign in to disconnect", domain.ErrUnauthorized)
	}
	if !u.IsAdmin() {
		return &ConnectError{Problem: ProblemNotAdminToRemove, kind: domain.ErrForbidden}
	}
	if err := s.registry.Disconnect(ctx, u.TenantID, *u); err != nil {
		return fmt.Errorf("disconnect tenant %s: %w", u.TenantID, err)
	}
	return nil
}

// IsProblem reports whether err is a ConnectError of problem p.
func IsProblem(err error, p Problem) bool {
	var ce *ConnectError
	return errors.As(err, &ce) && ce.Problem == p
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
