package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/tenantsync/tenantsync/internal/retry"
)

// TokenErrorKind says what a failed token request means for the tenant.
type TokenErrorKind int

// Token error kinds, from the response's error_codes (protocol §2.6), never
// from its text (protocol §2.5: react to codes, not descriptions).
const (
	// TokenOther is any other failure; retry later.
	TokenOther TokenErrorKind = iota
	// ConsentMissing: the app is not in the tenant (never consented,
	// removed, or a fresh consent not replicated yet): AADSTS700016, 7000229.
	ConsentMissing
	// TenantNotFound: the tenant does not exist: AADSTS90002, 900023.
	TenantNotFound
	// ServicePrincipalDisabled: the customer disabled the app: AADSTS7000112.
	ServicePrincipalDisabled
	// AppCredentialBroken: the app's own secret, certificate or assertion is
	// wrong or expired (AADSTS7000215, 7000222, 7000218, 700027, 700024). An
	// operator problem: it fails every tenant alike, so no tenant is blamed.
	AppCredentialBroken
	// Throttled: 429 from the token endpoint; see RetryAfter.
	Throttled
	// Unavailable: 5xx or a network failure; retry later (RetryAfter if sent).
	Unavailable
)

var tokenErrorKindNames = map[TokenErrorKind]string{
	TokenOther: "other", ConsentMissing: "consent_missing", TenantNotFound: "tenant_not_found",
	ServicePrincipalDisabled: "service_principal_disabled", AppCredentialBroken: "app_credential_broken",
	Throttled: "throttled", Unavailable: "unavailable",
}

func (k TokenErrorKind) String() string { return tokenErrorKindNames[k] }

var kindByCode = map[int]TokenErrorKind{
	700016: ConsentMissing, 7000229: ConsentMissing,
	90002: TenantNotFound, 900023: TenantNotFound,
	7000112: ServicePrincipalDisabled,
	7000215: AppCredentialBroken, 7000222: AppCredentialBroken, 7000218: AppCredentialBroken,
	700027: AppCredentialBroken, 700024: AppCredentialBroken,
	// Federated assertion mismatches (protocol §2.3) are the app's credential too.
	700211: AppCredentialBroken, 700212: AppCredentialBroken, 700213: AppCredentialBroken,
}

// TokenError is a failed token request. Its message names the tenant, the
// kind, the OAuth error and the AADSTS codes, never a token, secret or
// assertion, and not Entra's free-text description.
type TokenError struct {
	Kind       TokenErrorKind
	TenantID   string
	Status     int    // HTTP status, 0 without a response
	OAuthError string // the response's "error", e.g. invalid_client
	Codes      []int  // the response's error_codes
	RetryAfter time.Duration
	cause      error // a transport error, never an MSAL CallErr (whose text holds the body)
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token for tenant %s: %s", e.TenantID, e.Kind)
	if e.OAuthError != "" {
		fmt.Fprintf(&b, " (%s", e.OAuthError)
		for _, c := range e.Codes {
			fmt.Fprintf(&b, ", AADSTS%d", c)
		}
		if e.Status != 0 {
			fmt.Fprintf(&b, ", HTTP %d", e.Status)
		}
		b.WriteString(")")
	} else if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.cause }

// Code is the first AADSTS code as text, or the OAuth error, for sync_runs.
func (e *TokenError) Code() string {
	if len(e.Codes) > 0 {
		return "AADSTS" + strconv.Itoa(e.Codes[0])
	}
	return e.OAuthError
}

// HasCode reports whether Entra answered with AADSTS code.
func (e *TokenError) HasCode(code int) bool { return slices.Contains(e.Codes, code) }

// faultKinds maps token error kinds to the domain's vocabulary.
var faultKinds = map[TokenErrorKind]domain.FaultKind{
	TokenOther: domain.FaultOther, ConsentMissing: domain.FaultConsentMissing, TenantNotFound: domain.FaultTenantNotFound,
	ServicePrincipalDisabled: domain.FaultServicePrincipalDisabled, AppCredentialBroken: domain.FaultAppCredentialBroken,
	Throttled: domain.FaultThrottled, Unavailable: domain.FaultUnavailable,
}

// fault gives a *TokenError the domain's vocabulary at the token source's
// boundary; other errors (a cancelled context) pass unchanged.
func fault(err error) error {
	te, ok := AsTokenError(err)
	if !ok {
		return err
	}
	return &domain.Fault{Kind: faultKinds[te.Kind], Code: te.Code(), RetryAfter: te.RetryAfter, Err: err}
}

// AsTokenError returns err's *TokenError, if any.
func AsTokenError(err error) (*TokenError, bool) {
	var te *TokenError
	ok := errors.As(err, &te)
	return te, ok
}

// classify turns an MSAL error into a *TokenError, reading error_codes from
// the response body MSAL keeps in CallErr (docs/libraries.md §1).
func classify(tenantID string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	te := &TokenError{TenantID: tenantID}
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) || ce.Resp == nil {
		// No HTTP answer: network, TLS, timeout. The text of a transport
		// error names the URL only.
		te.Kind = Unavailable
		if errors.Is(err, context.DeadlineExceeded) {
			te.cause = context.DeadlineExceeded
		} else {
			te.cause = errors.New(firstLine(err.Error()))
		}
		return te
	}
	te.Status = ce.Resp.StatusCode
	te.RetryAfter = retry.After(ce.Resp.Header.Get("Retry-After"), time.Now())
	var body struct {
		Error      string `json:"error"`
		ErrorCodes []int  `json:"error_codes"`
	}
	if ce.Resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
		_ = json.Unmarshal(b, &body)
	}
	te.OAuthError, te.Codes = body.Error, body.ErrorCodes
	for _, c := range body.ErrorCodes {
		if k, ok := kindByCode[c]; ok {
			te.Kind = k
			return te
		}
	}
	switch {
	case te.Status == http.StatusTooManyRequests:
		te.Kind = Throttled
	case te.Status >= 500:
		te.Kind = Unavailable
	case body.Error == "invalid_client":
		// Every invalid_client code in protocol §2.6 is the app's credential.
		te.Kind = AppCredentialBroken
	case body.Error == "invalid_tenant":
		te.Kind = TenantNotFound
	}
	return te
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
