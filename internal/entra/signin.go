package entra

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// PersonalAccountTenantID is the tenant of personal Microsoft accounts
// (protocol §4.3, §4.5); such accounts cannot administer an organization.
const PersonalAccountTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Directory role template IDs carried in the ID token's wids claim that may
// grant Microsoft Graph application permissions (protocol §1.1, E-GAC).
const (
	RoleGlobalAdministrator         = "62e90394-69f5-4237-9190-012177145e10"
	RolePrivilegedRoleAdministrator = "e8611ab8-c189-46e8-94e1-60213ab1f814"
)

// ErrPersonalAccount means a personal Microsoft account signed in; only work
// or school accounts can connect an organization.
var ErrPersonalAccount = errors.New("personal Microsoft accounts cannot sign in")

// Identity is the verified signed-in user of an ID token.
type Identity struct {
	TenantID       string   // tid
	ObjectID       string   // oid, unique within TenantID only (protocol §4.5)
	Subject        string   // sub, pairwise per app
	Username       string   // preferred_username, mutable: for display only
	Name           string   // name
	DirectoryRoles []string // wids: directory role template IDs
	AppRoles       []string // roles: the app's own roles assigned to the user
}

// SignInConfig configures OpenID Connect sign-in.
type SignInConfig struct {
	// AuthorityHost is ENTRA_AUTHORITY_HOST, e.g. https://login.microsoftonline.com.
	AuthorityHost string
	// ClientID is the multi-tenant app's client ID.
	ClientID string
	// ClientSecret authenticates the app at the token endpoint.
	ClientSecret string
	// CertFile and KeyFile are a PEM certificate and its RSA key; the
	// redemption then carries a client assertion signed with them.
	CertFile, KeyFile string
	// FederatedTokenFile holds a client assertion, re-read per redemption;
	// used when ClientSecret is empty.
	FederatedTokenFile string
	// RedirectURL is PUBLIC_BASE_URL + "/auth/callback".
	RedirectURL string
	// HTTPClient reaches the authority host (NewHTTPClient).
	HTTPClient *http.Client
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
}

// SignIn runs the authorization code flow with PKCE against
// {host}/organizations and verifies ID tokens as a multi-tenant app must.
type SignIn struct {
	host     string
	clientID string
	fedFile  string
	cert     *certAssertion
	now      func() time.Time
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
}

// NewSignIn builds a SignIn. The code redemption authenticates the app with
// the same credential as the worker: a secret, a certificate (a signed
// client assertion) or a federated assertion file.
func NewSignIn(cfg SignInConfig) (*SignIn, error) {
	host := strings.TrimRight(cfg.AuthorityHost, "/")
	if host == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("sign-in: authority host, client ID and redirect URL are required")
	}
	var cert *certAssertion
	if cfg.ClientSecret == "" && cfg.CertFile != "" {
		var err error
		if cert, err = loadCertAssertion(cfg.CertFile, cfg.KeyFile, cfg.ClientID); err != nil {
			return nil, fmt.Errorf("sign-in: %w", err)
		}
	}
	if cfg.ClientSecret == "" && cert == nil && cfg.FederatedTokenFile == "" {
		return nil, errors.New("sign-in: needs ENTRA_CLIENT_SECRET, ENTRA_CLIENT_CERT_FILE+ENTRA_CLIENT_KEY_FILE or ENTRA_FEDERATED_TOKEN_FILE")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// Discovery for /organizations advertises the {tenantid} issuer template,
	// which go-oidc cannot match (docs/libraries.md §5): skip it, take the common
	// JWKS, and check iss against tid after verification.
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), host+"/common/discovery/v2.0/keys")
	v := oidc.NewVerifier("", keys, &oidc.Config{ClientID: cfg.ClientID, SkipIssuerCheck: true, Now: now})
	return &SignIn{
		host:     host,
		clientID: cfg.ClientID,
		fedFile:  cfg.FederatedTokenFile,
		cert:     cert,
		now:      now,
		client:   client,
		verifier: v,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       []string{oidc.ScopeOpenID, "profile"},
			Endpoint: oauth2.Endpoint{
				AuthURL:   host + "/organizations/oauth2/v2.0/authorize",
				TokenURL:  host + "/organizations/oauth2/v2.0/token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
	}, nil
}

// AuthCodeURL returns the authorize URL for one sign-in attempt; state,
// nonce and the PKCE verifier stay on the server (protocol §4.4).
func (s *SignIn) AuthCodeURL(state, nonce, verifier string) string {
	return s.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("response_mode", "query"))
}

// AuthCodeURLSelectAccount is AuthCodeURL with prompt=select_account
// (protocol §4.4): Entra lets the user choose another account rather than
// signing the current one in again.
func (s *SignIn) AuthCodeURLSelectAccount(state, nonce, verifier string) string {
	return s.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("response_mode", "query"), oauth2.SetAuthURLParam("prompt", "select_account"))
}

// idClaims are the ID token claims tenantsync reads (protocol §4.5).
type idClaims struct {
	Issuer            string   `json:"iss"`
	TenantID          string   `json:"tid"`
	ObjectID          string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username"`
	Name              string   `json:"name"`
	Wids              []string `json:"wids"`
	Roles             []string `json:"roles"`
}

// Exchange redeems code with the PKCE verifier and returns the verified
// identity. Token failures are domain.ErrUnauthorized; a personal account
// is ErrPersonalAccount.
func (s *SignIn) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if s.oauth.ClientSecret == "" {
		var assertion string
		if s.cert != nil {
			a, err := s.cert.sign(s.oauth.Endpoint.TokenURL, s.now())
			if err != nil {
				return Identity{}, err
			}
			assertion = a
		} else {
			b, err := os.ReadFile(s.fedFile)
			if err != nil {
				return Identity{}, fmt.Errorf("sign-in: read federated token file: %w", err)
			}
			assertion = strings.TrimSpace(string(b))
		}
		opts = append(opts,
			oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := s.oauth.Exchange(oidc.ClientContext(ctx, s.client), code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// ErrorCode only: the body may echo request values.
			return Identity{}, fmt.Errorf("%w: sign-in code redemption refused (%s)", domain.ErrUnauthorized, re.ErrorCode)
		}
		return Identity{}, fmt.Errorf("sign-in code redemption: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: token response has no id_token", domain.ErrUnauthorized)
	}
	return s.Verify(ctx, raw, nonce)
}

// Verify checks an ID token as a multi-tenant app must (protocol §4.5,
// docs/libraries.md §5): signature from the JWKS, aud, exp and nbf (go-oidc), then
// tid a GUID, iss exactly {host}/{tid}/v2.0 and the nonce.
func (s *SignIn) Verify(ctx context.Context, raw, nonce string) (Identity, error) {
	idt, err := s.verifier.Verify(oidc.ClientContext(ctx, s.client), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: id token: %w", domain.ErrUnauthorized, err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: id token claims: %w", domain.ErrUnauthorized, err)
	}
	return s.identity(c, idt.Subject, idt.Nonce, nonce)
}

// identity judges the claims of an ID token whose signature, aud, exp and
// nbf passed: tokenNonce is the token's nonce, nonce the sign-in's.
func (s *SignIn) identity(c idClaims, subject, tokenNonce, nonce string) (Identity, error) {
	if !domain.IsGUID(c.TenantID) {
		return Identity{}, fmt.Errorf("%w: id token tid is not a GUID", domain.ErrUnauthorized)
	}
	if c.Issuer != s.host+"/"+c.TenantID+"/v2.0" {
		return Identity{}, fmt.Errorf("%w: id token issuer does not match its tenant", domain.ErrUnauthorized)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(tokenNonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: id token nonce mismatch", domain.ErrUnauthorized)
	}
	if strings.EqualFold(c.TenantID, PersonalAccountTenantID) {
		return Identity{}, ErrPersonalAccount
	}
	return Identity{
		TenantID:       strings.ToLower(c.TenantID),
		ObjectID:       c.ObjectID,
		Subject:        subject,
		Username:       c.PreferredUsername,
		Name:           c.Name,
		DirectoryRoles: c.Wids,
		AppRoles:       c.Roles,
	}, nil
}
