package entra

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"golang.org/x/sync/singleflight"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Token is an app-only Microsoft Graph access token for one tenant.
type Token struct {
	// Value is the bearer token; it never reaches a log line or an error.
	Value string
	// ExpiresOn is when the token stops working.
	ExpiresOn time.Time
	// Roles are the Graph application permissions the token carries.
	Roles []string
}

// String hides the token value from %v and %s.
func (t Token) String() string {
	return fmt.Sprintf("Token{expires %s, roles %v}", t.ExpiresOn.UTC().Format(time.RFC3339), t.Roles)
}

// TokenConfig configures a TokenSource. Exactly one credential is set:
// Secret, CertFile+KeyFile, or FederatedTokenFile.
type TokenConfig struct {
	// AuthorityHost is ENTRA_AUTHORITY_HOST, e.g. https://login.microsoftonline.com.
	AuthorityHost string
	// GraphBaseURL is GRAPH_BASE_URL; it selects the token's resource (scope).
	GraphBaseURL string
	// ClientID is the multi-tenant app's client ID.
	ClientID string
	// Secret is the client secret.
	Secret string
	// CertFile and KeyFile are a PEM certificate and its RSA key.
	CertFile, KeyFile string
	// FederatedTokenFile holds a client assertion, read again on every token
	// request (Kubernetes rotates it).
	FederatedTokenFile string
	// HTTPClient reaches the authority host; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock for cache expiry; nil means time.Now.
	Now func() time.Time
	// Observe, if set, is told the outcome of every Token call: "cache",
	// "issued", or the failure kind (consent_missing, throttled, …).
	Observe func(outcome string)
}

// expiryMargin is how long before ExpiresOn a cached token is replaced; MSAL
// uses the same 5 minutes (protocol §6.2).
const expiryMargin = 5 * time.Minute

// TokenSource acquires app-only Graph tokens per tenant from one MSAL
// confidential client (protocol §6.2: one client, WithTenantID per call). It is
// safe for concurrent use.
//
// MSAL caches tokens itself, but its cache lookup scans every cached token
// (docs/libraries.md §1: 148 µs at 5,000 tenants), so TokenSource keeps its own
// map in front of it for an O(1) hit, and coalesces concurrent requests for
// one tenant (MSAL does not).
type TokenSource struct {
	client confidential.Client
	scopes []string
	now    func() time.Time
	flight singleflight.Group

	mu     sync.RWMutex
	cache  map[string]Token
	bypass map[string]bool // tenants whose next request must skip MSAL's cache

	observe func(outcome string)
}

// NewTokenSource builds the confidential client. It reads the certificate
// now; a federated assertion is read on each request.
func NewTokenSource(cfg TokenConfig) (*TokenSource, error) {
	return newTokenSource(cfg, false)
}

// newTokenSource is NewTokenSource; keepMSALCache lets MSAL keep its own
// cache of every token, as it does by default (for the benchmark that
// prices it).
func newTokenSource(cfg TokenConfig, keepMSALCache bool) (*TokenSource, error) {
	cred, err := credential(cfg)
	if err != nil {
		return nil, err
	}
	host := strings.TrimRight(cfg.AuthorityHost, "/")
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("authority host must be an https URL")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	opts := []confidential.Option{confidential.WithHTTPClient(hc)}
	if !isMicrosoftAuthority(u.Hostname()) {
		// docs/libraries.md §1: otherwise MSAL asks login.microsoftonline.com to
		// validate the host and fails.
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	if !keepMSALCache {
		opts = append(opts, confidential.WithCache(forgetfulCache{}))
	}
	client, err := confidential.New(host+"/organizations", cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("msal client: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	observe := cfg.Observe
	return &TokenSource{
		client: client, scopes: []string{GraphScope(cfg.GraphBaseURL)}, now: now,
		cache: map[string]Token{}, bypass: map[string]bool{}, observe: observe,
	}, nil
}

func credential(cfg TokenConfig) (confidential.Credential, error) {
	switch {
	case cfg.Secret != "":
		return confidential.NewCredFromSecret(cfg.Secret)
	case cfg.CertFile != "" && cfg.KeyFile != "":
		certPEM, err := os.ReadFile(cfg.CertFile)
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("read client certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("read client key: %w", err)
		}
		pemData := append(append(certPEM, '\n'), keyPEM...)
		certs, key, err := confidential.CertFromPEM(pemData, "")
		if err != nil {
			// The error may describe the key; say which files instead.
			return confidential.Credential{}, fmt.Errorf("client certificate %s / key %s: not a PEM certificate with an unencrypted RSA key", cfg.CertFile, cfg.KeyFile)
		}
		return confidential.NewCredFromCert(certs, key)
	case cfg.FederatedTokenFile != "":
		path := cfg.FederatedTokenFile
		return confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("read federated token file %s: %w", path, err)
			}
			return strings.TrimSpace(string(b)), nil
		}), nil
	}
	return confidential.Credential{}, errors.New("no app credential: set a secret, a certificate and key, or a federated token file")
}

// microsoftAuthorities are the hosts MSAL trusts without instance discovery
// (protocol §4.1).
var microsoftAuthorities = []string{
	"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
	"login.microsoftonline.us", "login-us.microsoftonline.com", "login.usgovcloudapi.net",
	"login.partner.microsoftonline.cn", "login.chinacloudapi.cn", "login.microsoftonline.de",
}

func isMicrosoftAuthority(host string) bool {
	return slices.Contains(microsoftAuthorities, strings.ToLower(host))
}

// microsoftGraphHosts are the national Graph endpoints (protocol §6.3).
var microsoftGraphHosts = []string{
	"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn",
}

// GraphScope is the client-credentials scope for the Graph at base: the
// cloud's Graph resource with /.default (protocol §2.1). Any other host (the
// emulator) stands in for global Graph, whose resource URI it serves.
func GraphScope(base string) string {
	if u, err := url.Parse(base); err == nil && slices.Contains(microsoftGraphHosts, strings.ToLower(u.Hostname())) {
		return "https://" + strings.ToLower(u.Hostname()) + "/.default"
	}
	return "https://graph.microsoft.com/.default"
}

// Token returns a token for tenantID: from the cache while it has more than
// five minutes left, else from Entra (one request per tenant at a time).
// Errors are *domain.Fault wrapping a *TokenError.
func (s *TokenSource) Token(ctx context.Context, tenantID string) (Token, error) {
	tenantID = strings.ToLower(tenantID)
	s.mu.RLock()
	t, ok := s.cache[tenantID]
	s.mu.RUnlock()
	if ok && s.now().Add(expiryMargin).Before(t.ExpiresOn) {
		s.report("cache")
		return t, nil
	}
	return s.await(ctx, tenantID, false)
}

// Fresh returns a token newly issued by Entra for tenantID, past both
// caches, and caches it. It is for confirming a verdict (consent revoked,
// tenant gone) that a cached token may have caused: its error is Entra's
// answer now. Errors are *domain.Fault wrapping a *TokenError.
func (s *TokenSource) Fresh(ctx context.Context, tenantID string) (Token, error) {
	return s.await(ctx, strings.ToLower(tenantID), true)
}

// await runs one acquisition per tenant (and kind) at a time and waits for
// it or for ctx.
func (s *TokenSource) await(ctx context.Context, tenantID string, fresh bool) (Token, error) {
	key := tenantID
	if fresh {
		// A fresh caller must not join an acquisition that may use MSAL's
		// cache.
		key = "fresh|" + tenantID
	}
	// The shared call must not die with the first caller's context.
	ch := s.flight.DoChan(key, func() (any, error) {
		return s.acquire(context.WithoutCancel(ctx), tenantID, fresh)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, fault(r.Err)
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// AccessToken returns the bearer value of Token, for the Graph client.
func (s *TokenSource) AccessToken(ctx context.Context, tenantID string) (string, error) {
	t, err := s.Token(ctx, tenantID)
	return t.Value, err
}

// Invalidate drops tenantID's cached token, so the next Token call asks
// Entra for a new one, past MSAL's cache too (Graph rejected the token, or
// the tenant's grants changed).
func (s *TokenSource) Invalidate(tenantID string) {
	tenantID = strings.ToLower(tenantID)
	s.mu.Lock()
	delete(s.cache, tenantID)
	s.bypass[tenantID] = true
	s.mu.Unlock()
}

// gone are the token errors after which no token of the tenant may be
// used: the app is not (or no longer) in the tenant, or the tenant is gone.
var gone = []TokenErrorKind{ConsentMissing, TenantNotFound, ServicePrincipalDisabled}

func (s *TokenSource) acquire(ctx context.Context, tenantID string, fresh bool) (Token, error) {
	if !domain.IsGUID(tenantID) {
		return Token{}, &TokenError{Kind: TenantNotFound, TenantID: tenantID, OAuthError: "tenant id is not a GUID"}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := []confidential.AcquireByCredentialOption{confidential.WithTenantID(tenantID)}
	s.mu.RLock()
	bypass := fresh || s.bypass[tenantID]
	s.mu.RUnlock()
	if bypass {
		// A claims request skips MSAL's cache (confidential.go
		// AcquireTokenByCredential); "nbf" is the claims challenge Entra
		// documents for forcing a fresh token.
		opts = append(opts, confidential.WithClaims(fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, s.now().Unix())))
	}
	ar, err := s.client.AcquireTokenByCredential(ctx, s.scopes, opts...)
	if err != nil {
		err = classify(tenantID, err)
		if te, ok := AsTokenError(err); ok {
			if slices.Contains(gone, te.Kind) {
				// Issue 11, defect 3: a token cached before the revocation
				// must not be served once Entra has said so.
				s.Invalidate(tenantID)
			}
			s.report(te.Kind.String())
		} else {
			s.report("other")
		}
		return Token{}, err
	}
	s.report("issued")
	t := Token{Value: ar.AccessToken, ExpiresOn: ar.ExpiresOn, Roles: tokenRoles(ar.AccessToken)}
	s.mu.Lock()
	s.cache[tenantID] = t
	delete(s.bypass, tenantID)
	s.mu.Unlock()
	return t, nil
}

// tokenRoles reads the roles claim from the token's payload without
// verifying it. Facts §3: Graph tokens are opaque to clients and cannot be
// validated by them; the roles claim is read only to tell the operator which
// grants are missing (Graph itself enforces them, answering 403).
func tokenRoles(jwt string) []string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return nil
	}
	return claims.Roles
}

// report passes outcome to the Observe hook, if any.
func (s *TokenSource) report(outcome string) {
	if s.observe != nil {
		s.observe(outcome)
	}
}

// forgetfulCache keeps MSAL's token cache empty: MSAL hands a cache
// accessor its whole cache before every lookup and write (Replace) and after
// every write (Export); this one replaces it with an empty cache and keeps
// nothing. TokenSource's own map is the cache. MSAL's lookup scans every
// token it holds under a lock (docs/libraries.md §1: 865 µs at 20,000
// tenants), so at fleet sizes each first token of a tenant, and each renewal,
// cost time in proportion to the fleet, and every token was held twice,
// never evicted.
type forgetfulCache struct{}

func (forgetfulCache) Replace(_ context.Context, c cache.Unmarshaler, _ cache.ReplaceHints) error {
	return c.Unmarshal([]byte("{}"))
}

func (forgetfulCache) Export(context.Context, cache.Marshaler, cache.ExportHints) error { return nil }
