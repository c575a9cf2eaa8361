package entra

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// certAssertion signs client assertions with the app's certificate, for the
// token requests MSAL does not make (sign-in code redemption).
type certAssertion struct {
	key      *rsa.PrivateKey
	x5tS256  string
	clientID string
}

// loadCertAssertion reads a PEM certificate and its unencrypted RSA key.
func loadCertAssertion(certFile, keyFile, clientID string) (*certAssertion, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read client certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read client key: %w", err)
	}
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("client certificate %s: no PEM certificate", certFile)
		}
		if b.Type == "CERTIFICATE" {
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("client certificate %s: %w", certFile, err)
			}
		}
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		// The parser's message may describe the key; name the file only.
		return nil, fmt.Errorf("client key %s: not an unencrypted RSA private key", keyFile)
	}
	sum := sha256.Sum256(cert.Raw)
	return &certAssertion{key: key, x5tS256: base64.RawURLEncoding.EncodeToString(sum[:]), clientID: clientID}, nil
}

func parseRSAKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("no PEM key")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			if rk, ok := k.(*rsa.PrivateKey); ok {
				return rk, nil
			}
			return nil, fmt.Errorf("not an RSA key")
		}
	}
}

// sign returns a client assertion for the token endpoint tokenURL, shaped
// as Entra documents it (protocol §2.2): PS256 with the certificate's SHA-256
// thumbprint in x5t#S256; aud = the token endpoint; iss = sub = client ID;
// a fresh jti; valid for 10 minutes from now.
func (c *certAssertion) sign(tokenURL string, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{
		"aud": tokenURL, "iss": c.clientID, "sub": c.clientID, "jti": uuid.NewString(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	t.Header["x5t#S256"] = c.x5tS256
	s, err := t.SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return s, nil
}
