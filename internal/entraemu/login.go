package entraemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// LoginHandler serves the login host: every route has the tenant (GUID,
// verified domain, "organizations", "common" or "consumers") as its first
// path segment, matched without regard to case because MSAL lowercases the
// authority (docs/libraries.md §1).
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration   v2 discovery (protocol §4.1)
//	GET  /{tenant}/.well-known/openid-configuration        v1 discovery (protocol §4.2)
//	GET  /{tenant}/discovery/v2.0/keys, /{tenant}/discovery/keys  JWKS (protocol §4.3)
//	GET  /{tenant}/oauth2/v2.0/authorize                   sign-in, code + PKCE (protocol §4.4)
//	POST /{tenant}/oauth2/v2.0/token                       token endpoint (protocol §2, §4.4)
//	GET  /{tenant}/oauth2/v2.0/logout                      clears the SSO cookie
//	GET  /{tenant}/v2.0/adminconsent, /{tenant}/adminconsent   admin consent (protocol §1)
func (e *Emulator) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := e.now()
		rest := strings.TrimPrefix(r.URL.Path, "/")
		seg, route, _ := strings.Cut(rest, "/")
		route = strings.ToLower(strings.TrimSuffix(route, "/"))
		rw := &statusWriter{ResponseWriter: w, status: 200}
		switch route {
		case "v2.0/.well-known/openid-configuration":
			e.handleDiscovery(rw, r, seg, true)
		case ".well-known/openid-configuration":
			e.handleDiscovery(rw, r, seg, false)
		case "discovery/v2.0/keys":
			e.handleJWKS(rw, r, true)
		case "discovery/keys":
			e.handleJWKS(rw, r, false)
		case "oauth2/v2.0/token":
			e.handleToken(rw, r, seg)
		case "oauth2/v2.0/authorize":
			e.handleAuthorize(rw, r, seg)
		case "oauth2/v2.0/logout", "oauth2/logout":
			e.handleLogout(rw, r, seg)
		case "v2.0/adminconsent":
			e.handleAdminConsent(rw, r, seg, true)
		case "adminconsent":
			e.handleAdminConsent(rw, r, seg, false)
		default:
			http.NotFound(rw, r)
		}
		// Paths only: queries carry codes and state (house style: no secrets in logs).
		e.log.Debug("login request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"duration", e.now().Sub(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type tenantKind int

const (
	kindTenant tenantKind = iota
	kindCommon
	kindOrganizations
	kindConsumers
)

// tenantRef is the resolved first path segment.
type tenantRef struct {
	raw  string
	kind tenantKind
	t    *tenantState // kindTenant only
}

// aadError is an Entra error (protocol §2.5, §2.6).
type aadError struct {
	status int
	code   string // "error"
	n      int    // AADSTS number
	msg    string // text after "AADSTSn: "
}

func (a *aadError) Error() string { return fmt.Sprintf("AADSTS%d: %s", a.n, a.msg) }

func errTenantNotFound(t string) *aadError {
	return &aadError{400, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", t)}
}

func errTenantMalformed(t string) *aadError {
	return &aadError{400, "invalid_request", 900023, fmt.Sprintf("Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", t)}
}

func errAppNotFound(appID, dir string) *aadError {
	return &aadError{400, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", appID, dir)}
}

func errMissingParam(name string) *aadError {
	return &aadError{400, "invalid_request", 900144, fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

// resolveTenant maps the first path segment to a tenant (protocol §2.6 rows
// 90002 and 900023). The caller holds e.mu for reading.
func (e *Emulator) resolveTenant(seg string) (tenantRef, *aadError) {
	ref := tenantRef{raw: seg}
	switch strings.ToLower(seg) {
	case "common":
		ref.kind = kindCommon
		return ref, nil
	case "organizations":
		ref.kind = kindOrganizations
		return ref, nil
	case "consumers":
		ref.kind = kindConsumers
		return ref, nil
	}
	if !isGUID(seg) && !isDNSName(seg) {
		return ref, errTenantMalformed(seg)
	}
	ref.t = e.tenant(seg)
	if ref.t == nil {
		return ref, errTenantNotFound(seg)
	}
	return ref, nil
}

func isDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// errorBody is the token endpoint's error JSON (protocol §2.5).
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// describe renders "AADSTSn: msg\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …".
func (e *Emulator) describe(r *http.Request, a *aadError) errorBody {
	now := e.now().UTC()
	ts := now.Format("2006-01-02 15:04:05Z")
	trace := uuid.NewString()
	corr := r.Header.Get("client-request-id")
	if !isGUID(corr) {
		corr = uuid.NewString()
	}
	return errorBody{
		Error:            a.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", a.n, a.msg, trace, corr, ts),
		ErrorCodes:       []int{a.n},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(a.n),
	}
}

func (e *Emulator) writeAADError(w http.ResponseWriter, r *http.Request, a *aadError) {
	writeJSON(w, a.status, e.describe(r, a))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	w.Write(b)
}

func baseURL(r *http.Request) string { return "https://" + r.Host }

// handleDiscovery serves the OpenID configuration. Tenant documents carry
// the tenant GUID; common/organizations carry the literal {tenantid}
// issuer template (protocol §4.1, docs/libraries.md §5).
func (e *Emulator) handleDiscovery(w http.ResponseWriter, r *http.Request, seg string, v2 bool) {
	e.mu.RLock()
	ref, aerr := e.resolveTenant(seg)
	e.mu.RUnlock()
	if aerr != nil {
		e.writeAADError(w, r, aerr)
		return
	}
	host := baseURL(r)
	path := strings.ToLower(seg)
	issuerTenant := "{tenantid}"
	region := any(nil)
	if ref.kind == kindTenant {
		path, issuerTenant, region = ref.t.id, ref.t.id, "NA"
	} else if ref.kind == kindConsumers {
		issuerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
	}
	var doc map[string]any
	if v2 {
		doc = map[string]any{
			"token_endpoint":                        host + "/" + path + "/oauth2/v2.0/token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"jwks_uri":                              host + "/" + path + "/discovery/v2.0/keys",
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"issuer":                                host + "/" + issuerTenant + "/v2.0",
			"request_uri_parameter_supported":       false,
			"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
			"authorization_endpoint":                host + "/" + path + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint":         host + "/" + path + "/oauth2/v2.0/devicecode",
			"http_logout_supported":                 true,
			"frontchannel_logout_supported":         true,
			"end_session_endpoint":                  host + "/" + path + "/oauth2/v2.0/logout",
			"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
				"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
				"at_hash", "c_hash", "email"},
			"kerberos_endpoint":                host + "/" + path + "/kerberos",
			"tenant_region_scope":              region,
			"cloud_instance_name":              "microsoftonline.com",
			"cloud_graph_host_name":            "graph.windows.net",
			"msgraph_host":                     "graph.microsoft.com",
			"rbac_url":                         "https://pas.windows.net",
			"code_challenge_methods_supported": []string{"plain", "S256"},
		}
	} else {
		doc = map[string]any{
			"token_endpoint":                        host + "/" + path + "/oauth2/token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"jwks_uri":                              host + "/" + path + "/discovery/keys",
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
			"scopes_supported":                      []string{"openid"},
			"issuer":                                "https://sts.windows.net/" + issuerTenant + "/",
			"microsoft_multi_refresh_token":         true,
			"authorization_endpoint":                host + "/" + path + "/oauth2/authorize",
			"http_logout_supported":                 true,
			"frontchannel_logout_supported":         true,
			"end_session_endpoint":                  host + "/" + path + "/oauth2/logout",
			"tenant_region_scope":                   region,
			"cloud_instance_name":                   "microsoftonline.com",
			"cloud_graph_host_name":                 "graph.windows.net",
			"msgraph_host":                          "graph.microsoft.com",
			"rbac_url":                              "https://pas.windows.net",
		}
	}
	b, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=86400, private")
	w.Write(b)
}

// handleJWKS publishes both signing keys; kid == x5t, and v2 keys carry the
// templated issuer (protocol §4.3). Keys are the same for every tenant.
func (e *Emulator) handleJWKS(w http.ResponseWriter, r *http.Request, v2 bool) {
	keys := make([]map[string]any, 0, 2)
	for _, k := range []signingKey{e.keys.active, e.keys.next} {
		jwk := map[string]any{
			"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
			"n":   base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
			"x5c": []string{base64.StdEncoding.EncodeToString(k.cert.Raw)},
		}
		if v2 {
			jwk["issuer"] = baseURL(r) + "/{tenantid}/v2.0"
		}
		keys = append(keys, jwk)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=86400, private")
	w.Write(b)
}

// fmtTime renders t as in Entra messages, e.g. 2024-01-02T03:04:05.0000000Z.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
