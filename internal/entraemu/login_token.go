package entraemu

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	codeLifetime  = 10 * time.Minute // protocol §4.4
	clockSkew     = 5 * time.Minute
)

// authCode is an issued authorization code (single use, protocol §4.4).
type authCode struct {
	clientID, redirectURI, tenantID, userID string
	scopes                                  []string
	nonce, challenge, method, sid           string
	issued                                  time.Time
	used                                    bool
}

type refreshGrant struct {
	clientID, tenantID, userID, sid string
	scopes                          []string
}

// handleToken is the v2 token endpoint (protocol §2, §4.4).
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request, seg string) {
	status, tid := e.token(w, r, seg)
	e.count(tid, func(c *Counters) {
		c.TokenRequests++
		c.TokenByStatus[status]++
	})
}

func (e *Emulator) token(w http.ResponseWriter, r *http.Request, seg string) (int, string) {
	fail := func(a *aadError, tid string) (int, string) {
		e.writeAADError(w, r, a)
		return a.status, tid
	}
	if r.Method != http.MethodPost {
		return fail(&aadError{400, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a GET request."}, "")
	}
	e.mu.RLock()
	ref, aerr := e.resolveTenant(seg)
	e.mu.RUnlock()
	if aerr != nil {
		return fail(aerr, "")
	}
	tid := ""
	if ref.t != nil {
		tid = ref.t.id
	}
	if err := r.ParseForm(); err != nil {
		return fail(&aadError{400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."}, tid)
	}
	form := r.PostForm
	var resp map[string]any
	switch gt := form.Get("grant_type"); gt {
	case "":
		return fail(errMissingParam("grant_type"), tid)
	case "client_credentials":
		resp, aerr = e.clientCredentials(r, ref, form)
	case "authorization_code":
		resp, aerr = e.redeemCode(r, ref, form)
	case "refresh_token":
		resp, aerr = e.redeemRefresh(r, ref, form)
	default:
		aerr = &aadError{400, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt)}
	}
	if aerr != nil {
		return fail(aerr, tid)
	}
	if t, ok := resp["_tid"].(string); ok {
		tid = t
		delete(resp, "_tid")
	}
	writeJSON(w, http.StatusOK, resp)
	return http.StatusOK, tid
}

// clientID takes client_id from the form, HTTP Basic or the assertion.
func clientIDOf(r *http.Request, form url.Values) string {
	if id := form.Get("client_id"); id != "" {
		return id
	}
	if u, _, ok := r.BasicAuth(); ok {
		id, _ := url.QueryUnescape(u)
		return id
	}
	if a := form.Get("client_assertion"); a != "" {
		var c jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(a, &c); err == nil {
			if iss, ok := c["iss"].(string); ok {
				return iss
			}
		}
	}
	return ""
}

func (e *Emulator) clientCredentials(r *http.Request, ref tenantRef, form url.Values) (map[string]any, *aadError) {
	// Client credentials must name a tenant (protocol §2): /common was observed
	// to answer 900023; 9001023 is the documented code for the others.
	switch ref.kind {
	case kindCommon:
		return nil, errTenantMalformed(ref.raw)
	case kindOrganizations, kindConsumers:
		return nil, &aadError{400, "invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."}
	}
	a, aerr := e.requestApp(r, ref, form)
	if aerr != nil {
		return nil, aerr
	}
	t := ref.t
	e.mu.RLock()
	var sp servicePrincipal
	var spOK bool
	if p := t.sps[a.ClientID]; p != nil {
		sp, spOK = *p, true
		sp.roles = slices.Clone(p.roles)
	}
	delay := e.propagation
	e.mu.RUnlock()
	// A fresh consent is not visible for PropagationDelay (protocol §6.1).
	if !spOK || e.now().Before(sp.created.Add(delay)) {
		return nil, errAppNotFound(a.ClientID, ref.raw)
	}
	if !sp.enabled {
		return nil, &aadError{400, "unauthorized_client", 7000112, fmt.Sprintf("Application '%s'(%s) is disabled.", a.ClientID, a.DisplayName)}
	}
	acr, aerr := e.authenticateClient(r, ref, a, form)
	if aerr != nil {
		return nil, aerr
	}
	aud, aerr := e.ccScope(t, form)
	if aerr != nil {
		return nil, aerr
	}
	tok, err := e.appToken(t, a, &sp, aud, acr)
	if err != nil {
		return nil, &aadError{500, "server_error", 90100, err.Error()}
	}
	return map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok}, nil
}

var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// ccScope validates a client-credentials scope (protocol §2.6 rows 90014,
// 1002012, 70011, 700022, 500011) and returns the token audience.
func (e *Emulator) ccScope(t *tenantState, form url.Values) (string, *aadError) {
	raw, present := form["scope"]
	if !present || strings.TrimSpace(raw[0]) == "" {
		return "", &aadError{400, "invalid_request", 90014, "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request."}
	}
	scope := raw[0]
	var resources []string
	for _, s := range strings.Fields(scope) {
		if oidcScopes[strings.ToLower(s)] {
			continue // MSAL always appends these (docs/libraries.md §1)
		}
		if !strings.HasSuffix(s, "/.default") {
			return "", errCCScope(scope)
		}
		res := strings.TrimSuffix(s, "/.default")
		if !validResource(res) {
			return "", &aadError{400, "invalid_scope", 70011, fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)}
		}
		if !slices.Contains(resources, res) {
			resources = append(resources, res)
		}
	}
	switch {
	case len(resources) == 0:
		return "", errCCScope(scope)
	case len(resources) > 1:
		return "", &aadError{400, "invalid_scope", 700022, fmt.Sprintf("The provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)}
	}
	aud, ok := graphAudience(resources[0])
	if !ok {
		return "", &aadError{400, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resources[0], t.displayName)}
	}
	return aud, nil
}

func errCCScope(scope string) *aadError {
	return &aadError{400, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
}

func validResource(res string) bool {
	if isGUID(res) {
		return true
	}
	u, err := url.Parse(res)
	return err == nil && (u.Scheme == "https" || u.Scheme == "api") && u.Host != "" && !strings.ContainsAny(res, " \t")
}

// graphAudience maps an accepted Graph resource identifier to the aud
// claim. Any https loopback/emulator URL is accepted too so a client that
// derives the resource from GRAPH_BASE_URL works.
func graphAudience(res string) (string, bool) {
	switch strings.ToLower(strings.TrimSuffix(res, "/")) {
	case graphResourceURI, "https://graph.microsoft.us", "https://dod-graph.microsoft.us", "https://microsoftgraph.chinacloudapi.cn":
		return graphResourceURI, true
	case graphAppID:
		return graphAppID, true
	}
	return "", false
}

// authenticateClient checks the client secret (post or basic) or client
// assertion (certificate or federated) and returns appidacr.
func (e *Emulator) authenticateClient(r *http.Request, ref tenantRef, a *appState, form url.Values) (string, *aadError) {
	secret, hasSecret := form.Get("client_secret"), form.Has("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		uu, _ := url.QueryUnescape(u)
		pp, _ := url.QueryUnescape(p)
		if strings.EqualFold(uu, a.ClientID) {
			secret, hasSecret = pp, true
		}
	}
	assertion := form.Get("client_assertion")
	switch {
	case hasSecret && secret != "":
		return "1", e.checkSecret(a, secret)
	case assertion != "":
		if form.Get("client_assertion_type") != assertionType {
			return "", &aadError{400, "invalid_request", 50027, "Invalid client_assertion_type; expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'."}
		}
		return "2", e.checkAssertion(r, ref, a, assertion)
	}
	return "", &aadError{401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
}

func (e *Emulator) checkSecret(a *appState, secret string) *aadError {
	now := e.now()
	for _, s := range a.Secrets {
		if subtle.ConstantTimeCompare([]byte(s.Value), []byte(secret)) == 1 {
			if !s.Expires.IsZero() && now.After(s.Expires) {
				return &aadError{401, "invalid_client", 7000222, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", a.ClientID)}
			}
			return nil
		}
	}
	return &aadError{401, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", a.ClientID)}
}

func claimString(c jwt.MapClaims, k string) string {
	s, _ := c[k].(string)
	return s
}

func claimTime(c jwt.MapClaims, k string) (time.Time, bool) {
	switch v := c[k].(type) {
	case float64:
		return time.Unix(int64(v), 0), true
	case int64:
		return time.Unix(v, 0), true
	}
	return time.Time{}, false
}

func claimAud(c jwt.MapClaims) []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// checkAssertion verifies a client assertion (protocol §2.2, §2.3).
func (e *Emulator) checkAssertion(r *http.Request, ref tenantRef, a *appState, assertion string) *aadError {
	var claims jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, &claims)
	if err != nil {
		return &aadError{400, "invalid_request", 50027, "JWT token is invalid or malformed."}
	}
	x5t256, _ := tok.Header["x5t#S256"].(string)
	x5t, _ := tok.Header["x5t"].(string)
	iss := claimString(claims, "iss")
	if x5t256 == "" && x5t == "" && !strings.EqualFold(iss, a.ClientID) {
		return e.checkFederated(a, assertion, claims)
	}
	var key *rsa.PublicKey
	for _, c := range a.certs {
		s1, s256 := thumbprints(c)
		if (x5t256 != "" && slices.Contains(s256, x5t256)) || (x5t256 == "" && x5t != "" && slices.Contains(s1, x5t)) {
			key, _ = c.PublicKey.(*rsa.PublicKey)
			break
		}
	}
	if key == nil {
		return &aadError{401, "invalid_client", 700027, fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/%s']", thumbHex(x5t256, x5t), a.ClientID, a.ClientID)}
	}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithoutClaimsValidation()).
		Parse(assertion, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return &aadError{401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]"}
	}
	if sub := claimString(claims, "sub"); sub != iss {
		return &aadError{401, "invalid_client", 50048, fmt.Sprintf("Subject mismatches Issuer claim in the client assertion for application '%s'.", a.ClientID)}
	}
	if !strings.EqualFold(iss, a.ClientID) {
		return &aadError{401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials"}
	}
	if !e.audienceOK(r, ref, claimAud(claims)) {
		return &aadError{401, "invalid_client", 50013, "Assertion failed signature validation. [Reason - The audience of the client assertion does not match the token endpoint of the tenant.]"}
	}
	if aerr := e.assertionTimes(claims); aerr != nil {
		return aerr
	}
	return e.checkReplay(a.ClientID, claims)
}

func thumbHex(x5t256, x5t string) string {
	v := x5t256
	if v == "" {
		v = x5t
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return strings.ToUpper(hex.EncodeToString(b))
		}
	}
	return v
}

// audienceOK accepts the tenant's token endpoint on this host under its
// GUID, any verified domain or the path segment used (protocol §2.2).
func (e *Emulator) audienceOK(r *http.Request, ref tenantRef, auds []string) bool {
	names := []string{strings.ToLower(ref.raw), ref.t.id}
	e.mu.RLock()
	names = append(names, ref.t.domains...)
	e.mu.RUnlock()
	hosts := []string{strings.ToLower(baseURL(r)), "https://login.microsoftonline.com"}
	for _, aud := range auds {
		aud = strings.ToLower(strings.TrimSuffix(aud, "/"))
		for _, h := range hosts {
			for _, n := range names {
				if aud == h+"/"+n+"/oauth2/v2.0/token" || aud == h+"/"+n+"/oauth2/token" {
					return true
				}
			}
		}
	}
	return false
}

func (e *Emulator) assertionTimes(claims jwt.MapClaims) *aadError {
	now := e.now()
	nbf, _ := claimTime(claims, "nbf") // optional: absent reads as 1970 (protocol §2.2)
	exp, _ := claimTime(claims, "exp")
	if now.Add(clockSkew).Before(nbf) || now.Add(-clockSkew).After(exp) {
		return &aadError{401, "invalid_client", 700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials", fmtTime(now), fmtTime(nbf), fmtTime(exp))}
	}
	return nil
}

// checkReplay refuses a jti seen before while its assertion is valid
// (replay rejection by Entra is UNVERIFIED, protocol §2.2; the emulator is strict).
func (e *Emulator) checkReplay(clientID string, claims jwt.MapClaims) *aadError {
	jti := claimString(claims, "jti")
	if jti == "" {
		return nil
	}
	exp, _ := claimTime(claims, "exp")
	now := e.now()
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	for k, until := range e.jtis {
		if now.After(until) {
			delete(e.jtis, k)
		}
	}
	key := clientID + "|" + jti
	if _, seen := e.jtis[key]; seen {
		return &aadError{401, "invalid_client", 50013, "Assertion is invalid. The client assertion jti was already used (replay)."}
	}
	e.jtis[key] = exp.Add(clockSkew)
	return nil
}

// checkFederated matches a federated identity credential case-sensitively
// by issuer, subject, then audience (protocol §2.3).
func (e *Emulator) checkFederated(a *appState, assertion string, claims jwt.MapClaims) *aadError {
	iss, sub, auds := claimString(claims, "iss"), claimString(claims, "sub"), claimAud(claims)
	var byIss []fedKey
	for _, f := range a.feds {
		if f.Issuer == iss {
			byIss = append(byIss, f)
		}
	}
	if len(byIss) == 0 {
		return &aadError{401, "invalid_client", 700211, fmt.Sprintf("No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", iss)}
	}
	var bySub []fedKey
	for _, f := range byIss {
		if f.Subject == sub {
			bySub = append(bySub, f)
		}
	}
	if len(bySub) == 0 {
		return &aadError{400, "invalid_request", 700213, fmt.Sprintf("No matching federated identity record found for presented assertion subject '%s'. Please note that matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", sub)}
	}
	var match *fedKey
	for i, f := range bySub {
		want := f.Audience
		if want == "" {
			want = "api://AzureADTokenExchange"
		}
		if slices.Contains(auds, want) {
			match = &bySub[i]
			break
		}
	}
	if match == nil {
		return &aadError{400, "invalid_request", 700212, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", strings.Join(auds, ","))}
	}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "PS256", "ES256"}), jwt.WithoutClaimsValidation()).
		Parse(assertion, func(t *jwt.Token) (any, error) {
			switch match.key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
				return match.key, nil
			}
			return nil, fmt.Errorf("unsupported federated key type %T", match.key)
		})
	if err != nil {
		return &aadError{401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]"}
	}
	if aerr := e.assertionTimes(claims); aerr != nil {
		return aerr
	}
	return e.checkReplay(a.ClientID, claims)
}

// requestApp returns the app named by the request's client ID.
func (e *Emulator) requestApp(r *http.Request, ref tenantRef, form url.Values) (*appState, *aadError) {
	clientID := clientIDOf(r, form)
	if clientID == "" {
		return nil, errMissingParam("client_id")
	}
	e.mu.RLock()
	a := e.app(clientID)
	e.mu.RUnlock()
	if a == nil {
		return nil, errAppNotFound(clientID, ref.raw)
	}
	return a, nil
}

// redeemCode implements the authorization_code grant with PKCE (protocol §4.4).
func (e *Emulator) redeemCode(r *http.Request, ref tenantRef, form url.Values) (map[string]any, *aadError) {
	a, aerr := e.requestApp(r, ref, form)
	if aerr != nil {
		return nil, aerr
	}
	code := form.Get("code")
	if code == "" {
		return nil, errMissingParam("code")
	}
	if ref.kind == kindTenant {
		if _, aerr := e.authenticateClient(r, ref, a, form); aerr != nil {
			return nil, aerr
		}
	} else if _, aerr := e.authenticateClientAnyTenant(r, a, form); aerr != nil {
		return nil, aerr
	}
	e.sessMu.Lock()
	ac := e.codes[code]
	var used bool
	if ac != nil {
		used = ac.used
		ac.used = true
	}
	e.sessMu.Unlock()
	switch {
	case ac == nil:
		return nil, &aadError{400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."}
	case used:
		return nil, &aadError{400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."}
	case e.now().After(ac.issued.Add(codeLifetime)):
		return nil, &aadError{400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."}
	case !strings.EqualFold(ac.clientID, a.ClientID):
		return nil, &aadError{400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued to a different client."}
	case ac.redirectURI != form.Get("redirect_uri"):
		return nil, &aadError{400, "invalid_grant", 50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URI of the authorization request.", form.Get("redirect_uri"))}
	case ref.kind == kindTenant && ref.t.id != ac.tenantID:
		return nil, &aadError{400, "invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant, thus rejected."}
	}
	if ac.challenge != "" && !pkceOK(ac.challenge, ac.method, form.Get("code_verifier")) {
		return nil, &aadError{400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."}
	}
	return e.userTokens(r, a, ac.tenantID, ac.userID, ac.nonce, ac.sid, ac.scopes)
}

// authenticateClientAnyTenant checks client credentials at /common or
// /organizations (assertion audience is then not tied to one tenant).
func (e *Emulator) authenticateClientAnyTenant(r *http.Request, a *appState, form url.Values) (string, *aadError) {
	if form.Get("client_assertion") == "" {
		return e.authenticateClient(r, tenantRef{}, a, form)
	}
	e.mu.RLock()
	home := e.tenant(e.seed.HomeTenantID)
	e.mu.RUnlock()
	if home == nil {
		return "", &aadError{401, "invalid_client", 50013, "Assertion is invalid."}
	}
	// The assertion's audience is the token endpoint the client called,
	// e.g. {host}/organizations/oauth2/v2.0/token, as MSAL derives it from
	// that authority's discovery document (protocol §2.2, §4.1).
	segment, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return e.authenticateClient(r, tenantRef{raw: segment, t: home}, a, form)
}

func pkceOK(challenge, method, verifier string) bool {
	if verifier == "" {
		return false
	}
	if strings.EqualFold(method, "S256") {
		sum := sha256.Sum256([]byte(verifier))
		return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
	}
	return subtle.ConstantTimeCompare([]byte(verifier), []byte(challenge)) == 1
}

func (e *Emulator) redeemRefresh(r *http.Request, ref tenantRef, form url.Values) (map[string]any, *aadError) {
	a, aerr := e.requestApp(r, ref, form)
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := e.authenticateClientAnyTenant(r, a, form); aerr != nil {
		return nil, aerr
	}
	rt := form.Get("refresh_token")
	e.sessMu.Lock()
	g := e.refresh[rt]
	delete(e.refresh, rt) // rotated on use
	e.sessMu.Unlock()
	if g == nil || !strings.EqualFold(g.clientID, a.ClientID) {
		return nil, &aadError{400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."}
	}
	return e.userTokens(r, a, g.tenantID, g.userID, "", g.sid, g.scopes)
}

// userTokens issues the delegated token response for a signed-in user.
func (e *Emulator) userTokens(r *http.Request, a *appState, tenantID, userID, nonce, sid string, scopes []string) (map[string]any, *aadError) {
	e.mu.RLock()
	t := e.tenant(tenantID)
	var u User
	st := stateHardDeleted
	if t != nil {
		if slot, ok := t.userSlot(userID); ok {
			u, st = t.user(slot)
		}
	}
	e.mu.RUnlock()
	if t == nil || st != stateLive {
		return nil, &aadError{400, "invalid_grant", 50034, "The user account does not exist in the directory."}
	}
	if !u.AccountEnabled {
		return nil, &aadError{400, "invalid_grant", 50057, "The user account is disabled."}
	}
	at, err := e.userToken(t, a, u, "1")
	if err != nil {
		return nil, &aadError{500, "server_error", 90100, err.Error()}
	}
	granted := []string{}
	for _, s := range []string{"openid", "profile", "email"} {
		if slices.Contains(scopes, s) {
			granted = append(granted, s)
		}
	}
	granted = append(granted, "https://graph.microsoft.com/User.Read")
	resp := map[string]any{
		"token_type": "Bearer", "scope": strings.Join(granted, " "), "expires_in": 3599, "ext_expires_in": 3599,
		"access_token": at, "_tid": t.id,
	}
	if slices.Contains(scopes, "openid") {
		idt, err := e.idToken(baseURL(r), t, a, u, nonce, sid, scopes)
		if err != nil {
			return nil, &aadError{500, "server_error", 90100, err.Error()}
		}
		resp["id_token"] = idt
	}
	if slices.Contains(scopes, "offline_access") {
		rt := randomToken(48)
		e.sessMu.Lock()
		e.refresh[rt] = &refreshGrant{clientID: a.ClientID, tenantID: t.id, userID: u.ID, sid: sid, scopes: scopes}
		e.sessMu.Unlock()
		resp["refresh_token"] = rt
	}
	return resp, nil
}
