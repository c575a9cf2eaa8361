package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
)

// testCert writes a self-signed certificate and its RSA key as PEM files
// and returns their paths and the certificate PEM.
func testCert(t *testing.T) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenantsync test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certPEM
}

// emulatorWithCert starts the emulator with certPEM registered on the app.
func emulatorWithCert(t *testing.T, certPEM []byte) *entraemu.Server {
	t.Helper()
	seed := entraemu.SmallSeed()
	seed.Apps[0].CertificatesPEM = append(seed.Apps[0].CertificatesPEM, string(certPEM))
	return entraemu.StartTest(t, entraemu.Config{Seed: seed})
}

// A server configured with only a certificate signs admins in: the code
// redemption carries a PS256 client assertion the emulator verifies.
func TestSignInWithCertificate(t *testing.T) {
	t.Parallel()
	certFile, keyFile, certPEM := testCert(t)
	srv := emulatorWithCert(t, certPEM)
	cfg := SignInConfig{AuthorityHost: srv.AuthorityHost, ClientID: srv.DefaultApp().ClientID,
		CertFile: certFile, KeyFile: keyFile, RedirectURL: testRedirect, HTTPClient: srv.HTTPClient()}
	s, err := NewSignIn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verifier := oauth2.GenerateVerifier()
	code := signInCode(t, srv, s, "admin@contoso.example", "n1", verifier)
	id, err := s.Exchange(context.Background(), code, verifier, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if id.TenantID != entraemu.ContosoTenantID || id.Username != "admin@contoso.example" {
		t.Errorf("identity %+v", id)
	}

	// A certificate the app does not know is refused at redemption.
	otherCert, otherKey, _ := testCert(t)
	cfg.CertFile, cfg.KeyFile = otherCert, otherKey
	stranger, err := NewSignIn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verifier = oauth2.GenerateVerifier()
	code = signInCode(t, srv, stranger, "admin@contoso.example", "n2", verifier)
	if _, err := stranger.Exchange(context.Background(), code, verifier, "n2"); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("unregistered certificate: %v, want ErrUnauthorized", err)
	}

	cfg.KeyFile = certFile // a certificate where the key should be
	if _, err := NewSignIn(cfg); err == nil {
		t.Error("NewSignIn accepted a certificate as the key")
	}
}

// The worker's token source acquires app-only tokens with the certificate
// through MSAL.
func TestTokenWithCertificate(t *testing.T) {
	t.Parallel()
	certFile, keyFile, certPEM := testCert(t)
	srv := emulatorWithCert(t, certPEM)
	ts, err := NewTokenSource(TokenConfig{AuthorityHost: srv.AuthorityHost, GraphBaseURL: srv.GraphBaseURL,
		ClientID: srv.DefaultApp().ClientID, CertFile: certFile, KeyFile: keyFile, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token(context.Background(), entraemu.ContosoTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value == "" || len(tok.Roles) == 0 {
		t.Errorf("token %+v", tok)
	}
}
