package entraemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Microsoft Graph identifiers (protocol §3).
const (
	graphAppID       = "00000003-0000-0000-c000-000000000000"
	graphResourceURI = "https://graph.microsoft.com"
	// GlobalAdminRoleTemplateID is the Global Administrator directory role
	// template ID carried in wids for admin users.
	GlobalAdminRoleTemplateID = "62e90394-69f5-4237-9190-012177145e10"
	// PrivilegedRoleAdminRoleTemplateID is Privileged Role Administrator:
	// like Global Administrator, it may grant Graph app roles (protocol §1.1).
	PrivilegedRoleAdminRoleTemplateID = "e8611ab8-c189-46e8-94e1-60213ab1f814"
	// CloudAppAdminRoleTemplateID is Cloud Application Administrator: it
	// may consent to anything except Graph app roles (protocol §1.1).
	CloudAppAdminRoleTemplateID = "158c047a-c907-4556-b7ef-446551a6b5f7"
	// AppAdminRoleTemplateID is Application Administrator: as Cloud
	// Application Administrator, no Graph app roles (protocol §1.1).
	AppAdminRoleTemplateID    = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	defaultUserRoleTemplateID = "b79fbf4d-3ef9-4689-8143-76b194e85509"
	appTokenWid               = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"
	// accessTokenLifetime matches expires_in 3599 (protocol §2.4).
	accessTokenLifetime = 3599 * time.Second
	// backdate: observed exp-iat is 3900 s while expires_in is 3599, so
	// iat/nbf are back-dated about 5 minutes (protocol §3).
	backdate = 5 * time.Minute
)

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (e *Emulator) sign(claims jwt.MapClaims, v1 bool) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = e.keys.active.kid
	if v1 {
		tok.Header["x5t"] = e.keys.active.kid
	}
	s, err := tok.SignedString(e.keys.active.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// appToken issues an app-only Graph access token shaped like the observed
// v1 tokens (protocol §3): roles only when granted.
func (e *Emulator) appToken(t *tenantState, a *appState, sp *servicePrincipal, aud, acr string) (string, error) {
	now := e.now()
	sts := "https://sts.windows.net/" + t.id + "/"
	c := jwt.MapClaims{
		"aud": aud, "iss": sts, "iat": now.Add(-backdate).Unix(), "nbf": now.Add(-backdate).Unix(),
		"exp": now.Add(accessTokenLifetime).Unix(), "aio": randomToken(48), "app_displayname": a.DisplayName,
		"appid": a.ClientID, "appidacr": acr, "idp": sts, "idtyp": "app", "oid": sp.id, "rh": randomToken(24) + ".",
		"sub": sp.id, "tenant_region_scope": "NA", "tid": t.id, "uti": randomToken(16), "ver": "1.0",
		"wids": []string{appTokenWid}, "xms_tcdt": t.created.Unix(),
	}
	if len(sp.roles) > 0 {
		c["roles"] = slices.Clone(sp.roles)
	}
	return e.sign(c, true)
}

func pairwise(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "/")))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:43]
}

// userRoles returns the directory role template IDs the user holds.
func userRoles(u User) []string {
	var roles []string
	if u.Admin {
		roles = append(roles, GlobalAdminRoleTemplateID)
	}
	for _, r := range u.DirectoryRoles {
		if r = strings.ToLower(r); !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// userWids is the wids of an access token: the user's roles and the
// default user role.
func userWids(u User) []string {
	if roles := userRoles(u); roles != nil {
		return append(roles, defaultUserRoleTemplateID)
	}
	return nil
}

// canGrantAppRoles reports whether u may grant Microsoft Graph
// application permissions: Global or Privileged Role Administrator only;
// Cloud Application and Application Administrators may consent to
// delegated permissions alone (protocol §1.1, E-GAC).
func canGrantAppRoles(u User) bool {
	roles := userRoles(u)
	return slices.Contains(roles, GlobalAdminRoleTemplateID) || slices.Contains(roles, PrivilegedRoleAdminRoleTemplateID)
}

// canConsent reports whether u may grant admin consent to roles (Graph
// application permissions; empty for delegated ones only).
func canConsent(u User, roles []string) bool {
	if canGrantAppRoles(u) {
		return true
	}
	if len(roles) > 0 {
		return false
	}
	r := userRoles(u)
	return slices.Contains(r, CloudAppAdminRoleTemplateID) || slices.Contains(r, AppAdminRoleTemplateID)
}

// idToken issues a v2 ID token (protocol §4.5): iss = host/tid/v2.0, wids for
// admins, roles for app-role holders.
func (e *Emulator) idToken(host string, t *tenantState, a *appState, u User, nonce, sid string, scopes []string) (string, error) {
	now := e.now()
	c := jwt.MapClaims{
		"aud": a.ClientID, "iss": host + "/" + t.id + "/v2.0", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "aio": randomToken(48), "name": u.DisplayName, "oid": u.ID,
		"preferred_username": u.UserPrincipalName, "rh": randomToken(24) + ".", "sid": sid,
		"sub": pairwise(a.ClientID, t.id, u.ID), "tid": t.id, "uti": randomToken(16), "ver": "2.0",
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if slices.Contains(scopes, "email") && u.Mail != "" {
		c["email"] = u.Mail
	}
	if roles := userRoles(u); roles != nil {
		c["wids"] = roles
	}
	if len(u.AppRoles) > 0 {
		c["roles"] = slices.Clone(u.AppRoles)
	}
	return e.sign(c, false)
}

// userToken issues a delegated Graph access token (v1 shape, scp claim).
func (e *Emulator) userToken(t *tenantState, a *appState, u User, acr string) (string, error) {
	now := e.now()
	sts := "https://sts.windows.net/" + t.id + "/"
	c := jwt.MapClaims{
		"aud": graphResourceURI, "iss": sts, "iat": now.Add(-backdate).Unix(), "nbf": now.Add(-backdate).Unix(),
		"exp": now.Add(accessTokenLifetime).Unix(), "acct": 0, "acr": "1", "aio": randomToken(48), "amr": []string{"pwd"},
		"app_displayname": a.DisplayName, "appid": a.ClientID, "appidacr": acr, "family_name": u.Surname,
		"given_name": u.GivenName, "idtyp": "user", "name": u.DisplayName, "oid": u.ID, "rh": randomToken(24) + ".",
		"scp": "openid profile email User.Read", "sub": pairwise(graphAppID, t.id, u.ID), "tenant_region_scope": "NA",
		"tid": t.id, "unique_name": u.UserPrincipalName, "upn": u.UserPrincipalName, "uti": randomToken(16), "ver": "1.0",
		"xms_tcdt": t.created.Unix(),
	}
	if w := userWids(u); w != nil {
		c["wids"] = w
	}
	return e.sign(c, true)
}

func newSID() string { return uuid.NewString() }
