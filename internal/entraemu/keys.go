package entraemu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// signingKey is one token signing key. kid == x5t == base64url SHA-1 of the
// certificate, as Entra publishes them (protocol §4.3).
type signingKey struct {
	kid  string
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// signingKeys holds the active key and a published next key so clients
// select by kid (rotation-ready).
type signingKeys struct {
	active signingKey
	next   signingKey
}

func (k *signingKeys) byKID(kid string) *rsa.PublicKey {
	switch kid {
	case k.active.kid:
		return &k.active.key.PublicKey
	case k.next.kid:
		return &k.next.key.PublicKey
	}
	return nil
}

var (
	sharedKeysOnce sync.Once
	sharedKeys     *signingKeys
	sharedKeysErr  error
)

// sharedSigningKeys generates the RSA signing keys once per process: RSA key
// generation is slow on small machines and emulators in one test binary
// are isolated by tenant, audience and SP checks anyway.
func sharedSigningKeys() (*signingKeys, error) {
	sharedKeysOnce.Do(func() {
		var ks signingKeys
		for i, dst := range []*signingKey{&ks.active, &ks.next} {
			k, err := newSigningKey(fmt.Sprintf("entraemu signing key %d", i+1))
			if err != nil {
				sharedKeysErr = err
				return
			}
			*dst = k
		}
		sharedKeys = &ks
	})
	return sharedKeys, sharedKeysErr
}

func newSigningKey(cn string) (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return signingKey{}, fmt.Errorf("self-sign signing key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return signingKey{}, fmt.Errorf("parse signing certificate: %w", err)
	}
	sum := sha1.Sum(der)
	return signingKey{kid: base64.RawURLEncoding.EncodeToString(sum[:]), key: key, cert: cert}, nil
}

// thumbprints of a client certificate in every encoding Entra accepts
// (protocol §2.2: x5t SHA-1 and x5t#S256 SHA-256, base64url or standard).
func thumbprints(c *x509.Certificate) (sha1s, sha256s []string) {
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	enc := func(b []byte) []string {
		return []string{base64.RawURLEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
			base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b)}
	}
	return enc(s1[:]), enc(s256[:])
}

type fedKey struct {
	FederatedCredential
	key crypto.PublicKey
}

// parsePublicKey reads a PEM public key or certificate.
func parsePublicKey(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return c.PublicKey, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS1 public key: %w", err)
		}
		return k, nil
	default:
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		return k, nil
	}
}

// ca is the certificate authority that signs the listeners' TLS leaf.
type ca struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

func newCA() (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "entraemu local CA", Organization: []string{"tenantsync entraemu"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func loadCA(certPEM, keyPEM []byte) (*ca, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA key pair: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, errors.New("load CA: certificate is not a CA or key cannot sign")
	}
	blk := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return &ca{cert: cert, key: signer, certPEM: blk}, nil
}

// leaf issues a TLS certificate for localhost, 127.0.0.1, ::1 and hosts.
func (c *ca) leaf(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "entraemu"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key}, nil
}
