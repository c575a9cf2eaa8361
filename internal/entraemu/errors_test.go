package entraemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

type certKey struct {
	der []byte
	key *rsa.PrivateKey
}

func parseCertKey(t *testing.T, certPEM, keyPEM []byte) certKey {
	t.Helper()
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return certKey{der: cb.Bytes, key: key}
}

// assertion builds a client assertion; mutate adjusts header and claims.
func assertion(t *testing.T, ck certKey, method jwt.SigningMethod, mutate func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := jwt.MapClaims{"aud": "AUD", "iss": DefaultClientID, "sub": DefaultClientID, "jti": uuid.NewString(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	tok := jwt.NewWithClaims(method, c)
	sum := sha256.Sum256(ck.der)
	tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:]) // MSAL Go's encoding (docs/libraries.md §1)
	if mutate != nil {
		mutate(tok.Header, c)
	}
	s, err := tok.SignedString(crypto.Signer(ck.key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenErrorCatalogue(t *testing.T) {
	t.Parallel()
	clk := newClock()
	certPEM, keyPEM := newClientCert(t)
	ck := parseCertKey(t, certPEM, keyPEM)
	otherPEM, otherKeyPEM := newClientCert(t)
	other := parseCertKey(t, otherPEM, otherKeyPEM)
	fedKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	fedPub, _ := x509.MarshalPKIXPublicKey(&fedKey.PublicKey)
	seed := SmallSeed()
	seed.Apps[0].Secrets = append(seed.Apps[0].Secrets, Secret{Value: "expired-secret", Expires: clk.Now().Add(-time.Hour)})
	seed.Apps[0].CertificatesPEM = []string{string(certPEM)}
	seed.Apps[0].FederatedCredentials = []FederatedCredential{{Issuer: "https://issuer.example", Subject: "system:serviceaccount:ns:sa",
		KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: fedPub}))}}
	s := StartTest(t, Config{Seed: seed, Now: clk.Now})
	if err := s.DisableServicePrincipal(FabrikamTenantID); err != nil {
		t.Fatal(err)
	}
	aud := s.AuthorityHost + "/" + ContosoTenantID + "/oauth2/v2.0/token"
	withAud := func(h map[string]any, c jwt.MapClaims) { c["aud"] = aud }
	fed := func(mut func(c jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:sa", "aud": "api://AzureADTokenExchange",
			"exp": clk.Now().Add(time.Hour).Unix(), "nbf": clk.Now().Unix(), "jti": uuid.NewString()}
		if mut != nil {
			mut(c)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(fedKey)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	replayed := assertion(t, ck, jwt.SigningMethodPS256, withAud)
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID},
			"client_secret": {DefaultClientSecret}, "scope": {"https://graph.microsoft.com/.default openid offline_access profile"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	certForm := func(a string) url.Values {
		return cc("client_secret", "-", "client_assertion_type", assertionType, "client_assertion", a)
	}
	type errCase struct {
		name, tenant string
		form         url.Values
		status       int
		err          string
		code         int
		prefix       string
	}
	tests := []errCase{
		{"no service principal", LitwareTenantID, cc(), 400, "unauthorized_client", 700016, "Application with identifier '" + DefaultClientID + "' was not found in the directory"},
		{"unknown app", ContosoTenantID, cc("client_id", "11111111-2222-3333-4444-555555555555"), 400, "unauthorized_client", 700016, "Application with identifier"},
		{"disabled service principal", FabrikamTenantID, cc(), 400, "unauthorized_client", 7000112, "Application '" + DefaultClientID + "'(tenantsync) is disabled."},
		{"tenant not found", "0b4c5e1a-0000-4000-8000-000000000000", cc(), 400, "invalid_tenant", 90002, "Tenant '0b4c5e1a-0000-4000-8000-000000000000' not found."},
		{"domain not found", "nowhere.example", cc(), 400, "invalid_tenant", 90002, "Tenant 'nowhere.example' not found."},
		{"malformed tenant", "not_a_tenant", cc(), 400, "invalid_request", 900023, "Specified tenant identifier 'not_a_tenant' is neither a valid DNS name"},
		{"client credentials at common", "common", cc(), 400, "invalid_request", 900023, "Specified tenant identifier 'common'"},
		{"client credentials at organizations", "organizations", cc(), 400, "invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints."},
		{"wrong secret", ContosoTenantID, cc("client_secret", "nope"), 401, "invalid_client", 7000215, "Invalid client secret provided."},
		{"expired secret", ContosoTenantID, cc("client_secret", "expired-secret"), 401, "invalid_client", 7000222, "The provided client secret keys for app '" + DefaultClientID + "' are expired."},
		{"no credential", ContosoTenantID, cc("client_secret", "-"), 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
		{"openid alone", ContosoTenantID, cc("scope", "openid"), 400, "invalid_scope", 1002012, "The provided value for scope openid is not valid. Client credential flows must have a scope value with /.default"},
		{"dynamic scope", ContosoTenantID, cc("scope", "https://graph.microsoft.com/User.Read.All"), 400, "invalid_scope", 1002012, "The provided value for scope https://graph.microsoft.com/User.Read.All is not valid."},
		{"invalid scope", ContosoTenantID, cc("scope", "not-a-resource/.default"), 400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid."},
		{"two resources", ContosoTenantID, cc("scope", "https://graph.microsoft.com/.default https://vault.azure.net/.default"), 400, "invalid_scope", 700022, "The provided value for the input parameter scope is not valid because it contains more than one resource."},
		{"unknown resource", ContosoTenantID, cc("scope", "https://unknown.example/.default"), 400, "invalid_resource", 500011, "The resource principal named https://unknown.example was not found in the tenant named Contoso."},
		{"missing scope", ContosoTenantID, cc("scope", "-"), 400, "invalid_request", 90014, "The required field 'scope' is missing"},
		{"missing grant_type", ContosoTenantID, cc("grant_type", "-"), 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."},
		{"unknown certificate", ContosoTenantID, certForm(assertion(t, other, jwt.SigningMethodPS256, withAud)), 401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key was not found."},
		{"bad signature", ContosoTenantID, certForm(assertion(t, other, jwt.SigningMethodPS256, func(h map[string]any, c jwt.MapClaims) {
			withAud(h, c)
			sum := sha256.Sum256(ck.der)
			h["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum[:])
		})), 401, "invalid_client", 700027, "Client assertion contains an invalid signature."},
		{"expired assertion", ContosoTenantID, certForm(assertion(t, ck, jwt.SigningMethodPS256, func(h map[string]any, c jwt.MapClaims) {
			withAud(h, c)
			c["exp"] = clk.Now().Add(-time.Hour).Unix()
		})), 401, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: 2026-11-23T10:00:00.0000000Z"},
		{"iss differs from sub", ContosoTenantID, certForm(assertion(t, ck, jwt.SigningMethodPS256, func(h map[string]any, c jwt.MapClaims) {
			withAud(h, c)
			c["sub"] = "someone-else"
		})), 401, "invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion"},
		{"wrong audience", ContosoTenantID, certForm(assertion(t, ck, jwt.SigningMethodPS256, nil)), 401, "invalid_client", 50013, "Assertion failed signature validation."},
		{"federated issuer unknown", ContosoTenantID, certForm(fed(func(c jwt.MapClaims) { c["iss"] = "https://other.example" })), 401, "invalid_client", 700211, "No matching federated identity record found for presented assertion issuer 'https://other.example'."},
		{"federated subject case", ContosoTenantID, certForm(fed(func(c jwt.MapClaims) { c["sub"] = "system:serviceaccount:NS:sa" })), 400, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject 'system:serviceaccount:NS:sa'. Please note that matching is done using a case-sensitive comparison."},
		{"federated audience", ContosoTenantID, certForm(fed(func(c jwt.MapClaims) { c["aud"] = "api://other" })), 400, "invalid_request", 700212, "No matching federated identity record found for presented assertion audience 'api://other'."},
		{"unsupported grant", ContosoTenantID, cc("grant_type", "password"), 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type 'password'."},
	}
	// The replayed assertion is accepted once, then refused.
	if status, body := postToken(t, s, ContosoTenantID, certForm(replayed)); status != 200 {
		t.Fatalf("first use of assertion: %d %v", status, body)
	}
	tests = append(tests, errCase{"jti replay", ContosoTenantID, certForm(replayed), 401, "invalid_client", 50013, "Assertion is invalid. The client assertion jti was already used (replay)."})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := postToken(t, s, tt.tenant, tt.form)
			desc, _ := body["error_description"].(string)
			codes, _ := body["error_codes"].([]any)
			if status != tt.status || body["error"] != tt.err || len(codes) != 1 || codes[0] != float64(tt.code) {
				t.Fatalf("got %d %v %v, want %d %s [%d]", status, body["error"], codes, tt.status, tt.err, tt.code)
			}
			want := "AADSTS" + itoa(tt.code) + ": " + tt.prefix
			if !strings.HasPrefix(desc, want) {
				t.Errorf("error_description = %q\nwant prefix %q", desc, want)
			}
			if !strings.Contains(desc, "\r\nTrace ID: ") || !strings.Contains(desc, "\r\nCorrelation ID: ") || body["trace_id"] == nil ||
				body["correlation_id"] == nil || body["timestamp"] != "2026-11-23 10:00:00Z" ||
				body["error_uri"] != "https://login.microsoftonline.com/error?code="+itoa(tt.code) {
				t.Errorf("error body = %v", body)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCertificateAssertionForms(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM := newClientCert(t)
	ck := parseCertKey(t, certPEM, keyPEM)
	seed := SmallSeed()
	seed.Apps[0].CertificatesPEM = []string{string(certPEM)}
	s := StartTest(t, Config{Seed: seed, Now: newClock().Now})
	aud := s.AuthorityHost + "/contoso.example/oauth2/v2.0/token"
	sum256 := sha256.Sum256(ck.der)
	sum1 := sha1.Sum(ck.der)
	forms := map[string]string{
		"PS256 x5t#S256 std": assertion(t, ck, jwt.SigningMethodPS256, func(h map[string]any, c jwt.MapClaims) { c["aud"] = aud }),
		"PS256 x5t#S256 url": assertion(t, ck, jwt.SigningMethodPS256, func(h map[string]any, c jwt.MapClaims) {
			c["aud"] = aud
			h["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum256[:])
		}),
		"RS256 x5t": assertion(t, ck, jwt.SigningMethodRS256, func(h map[string]any, c jwt.MapClaims) {
			c["aud"] = aud
			delete(h, "x5t#S256")
			h["x5t"] = base64.RawURLEncoding.EncodeToString(sum1[:])
		}),
	}
	for name, a := range forms {
		status, body := postToken(t, s, "contoso.example", url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID},
			"client_assertion_type": {assertionType}, "client_assertion": {a}, "scope": {"https://graph.microsoft.com/.default"}})
		if status != http.StatusOK {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	// HTTP Basic client authentication.
	req, _ := http.NewRequest(http.MethodPost, s.AuthorityHost+"/"+ContosoTenantID+"/oauth2/v2.0/token",
		strings.NewReader("grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DefaultClientID, url.QueryEscape(DefaultClientSecret))
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth: %d", resp.StatusCode)
	}
}

func TestPropagationDelay(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, PropagationDelay: 30 * time.Second})
	if err := s.Grant(LitwareTenantID); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		"scope": {"https://graph.microsoft.com/.default"}}
	if status, body := postToken(t, s, LitwareTenantID, form); status != 400 || body["error_codes"].([]any)[0] != float64(700016) {
		t.Fatalf("during propagation: %d %v", status, body)
	}
	clk.Advance(31 * time.Second)
	if status, body := postToken(t, s, LitwareTenantID, form); status != 200 {
		t.Fatalf("after propagation: %d %v", status, body)
	}
	c := s.Counters(LitwareTenantID)
	if c.TokenRequests != 2 || c.TokenByStatus[400] != 1 || c.TokenByStatus[200] != 1 {
		t.Errorf("counters = %+v", c)
	}
}
