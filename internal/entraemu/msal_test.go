package entraemu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

func TestMSALSecretPerTenant(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed()})
	app := s.DefaultApp()
	cred, err := confidential.NewCredFromSecret(app.Secrets[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	c := newMSALClient(t, s, app.ClientID, cred)
	for _, tid := range []string{ContosoTenantID, FabrikamTenantID} {
		ar, err := acquireGraph(c, tid)
		if err != nil {
			t.Fatalf("acquire for %s: %v", tid, err)
		}
		claims := decodeJWT(t, ar.AccessToken)
		if claims["tid"] != tid || claims["appid"] != app.ClientID || claims["idtyp"] != "app" || claims["appidacr"] != "1" ||
			claims["iss"] != "https://sts.windows.net/"+tid+"/" || claims["aud"] != "https://graph.microsoft.com" || claims["ver"] != "1.0" {
			t.Errorf("claims for %s: %v", tid, claims)
		}
		roles, _ := claims["roles"].([]any)
		if len(roles) != 3 {
			t.Errorf("roles = %v, want the 3 required roles", roles)
		}
		if iat, exp := claims["iat"].(float64), claims["exp"].(float64); exp-iat < 3800 {
			t.Errorf("exp-iat = %v, want back-dated iat (≈3899)", exp-iat)
		}
		resp, body := graphGet(t, s, ar.AccessToken, "/v1.0/organization")
		if resp.StatusCode != 200 {
			t.Fatalf("organization: %d %v", resp.StatusCode, body)
		}
		org := body["value"].([]any)[0].(map[string]any)
		if org["id"] != tid {
			t.Errorf("organization id = %v", org["id"])
		}
	}
	// Litware has not consented: AADSTS700016.
	_, err = acquireGraph(c, LitwareTenantID)
	if err == nil || !containsAll(err.Error(), "700016", "unauthorized_client") {
		t.Errorf("litware: err = %v, want AADSTS700016", err)
	}
	if err := s.Grant(LitwareTenantID, "User.Read.All"); err != nil {
		t.Fatal(err)
	}
	ar, err := acquireGraph(c, LitwareTenantID)
	if err != nil {
		t.Fatalf("litware after grant: %v", err)
	}
	if roles := decodeJWT(t, ar.AccessToken)["roles"]; !slices.Equal(toStrings(roles), []string{"User.Read.All"}) {
		t.Errorf("roles = %v", roles)
	}
}

func TestMSALCertificate(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM := newClientCert(t)
	seed := SmallSeed()
	seed.Apps[0].CertificatesPEM = []string{string(certPEM)}
	s := StartTest(t, Config{Seed: seed})
	certs, key, err := confidential.CertFromPEM(append(certPEM, keyPEM...), "")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		t.Fatal(err)
	}
	c := newMSALClient(t, s, DefaultClientID, cred)
	for _, tid := range []string{ContosoTenantID, FabrikamTenantID} {
		ar, err := acquireGraph(c, tid)
		if err != nil {
			t.Fatalf("acquire with certificate for %s: %v", tid, err)
		}
		if claims := decodeJWT(t, ar.AccessToken); claims["appidacr"] != "2" || claims["tid"] != tid {
			t.Errorf("claims = %v", claims)
		}
	}
}

// newMSALClient is an MSAL confidential client of s at /organizations.
func newMSALClient(t *testing.T, s *Server, clientID string, cred confidential.Credential) confidential.Client {
	t.Helper()
	c, err := confidential.New(s.AuthorityHost+"/organizations", clientID, cred,
		confidential.WithHTTPClient(s.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acquireGraph acquires an app-only Graph token for tenant tid.
func acquireGraph(c confidential.Client, tid string) (confidential.AuthResult, error) {
	return c.AcquireTokenByCredential(context.Background(), []string{"https://graph.microsoft.com/.default"}, confidential.WithTenantID(tid))
}

func newClientCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "tenantsync client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !contains(s, x) {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
