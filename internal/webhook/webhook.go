// Package webhook holds what both the API and the worker need of Standard
// Webhooks (https://www.standardwebhooks.com, docs/protocol.md §8): whsec_
// secrets, the v1 signature, and the rule that keeps the server from
// becoming a request-forgery proxy — https only and no loopback, private,
// link-local, unspecified or multicast address, checked when an endpoint is
// saved (its host resolved) and again on every dial, on the address
// actually dialled. It is a leaf: it imports nothing of the module.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: whsec_ and the standard base64
// of 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Signature returns the webhook-signature header for a message with id,
// timestamp and body, signed by each of secrets ("v1,<base64>", space
// separated): a receiver accepts it if any one matches its secret.
func Signature(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
		if err != nil {
			return "", errors.New("webhook secret is not whsec_ and base64") // the secret itself stays out
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// Headers sets the Standard Webhooks headers of one delivery attempt.
func Headers(h http.Header, secrets []string, id string, ts time.Time, body []byte) error {
	sig, err := Signature(secrets, id, ts, body)
	if err != nil {
		return err
	}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return nil
}

// ErrForbiddenAddress is the answer for an address webhooks may not reach.
var ErrForbiddenAddress = errors.New("webhook URLs may not reach loopback, private, link-local, unspecified or multicast addresses")

// notPublic are ranges beyond what netip's predicates name: "this network",
// carrier-grade NAT, IETF protocol assignments, benchmarking, reserved,
// broadcast, and NAT64 (which could reach any IPv4 address, private ones too).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// PublicAddr reports whether ip may be dialled by a webhook delivery.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Policy is the URL rule of one process: AllowPrivate is
// WEBHOOK_ALLOW_PRIVATE (development and tests only), which lets http and
// every address through.
type Policy struct {
	AllowPrivate bool
	// Resolve looks a host's addresses up; nil means net.DefaultResolver.
	// Tests stand in for DNS with it.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// InvalidURLError is why a URL may not be a webhook endpoint; its message
// is for the API's client.
type InvalidURLError struct{ Reason string }

func (e *InvalidURLError) Error() string { return e.Reason }

// Check reports, as an *InvalidURLError, why raw may not be an endpoint: it
// must be an absolute http(s) URL without credentials whose host resolves
// to public addresses only, and https, unless AllowPrivate.
func (p Policy) Check(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return &InvalidURLError{"url must be an absolute URL"}
	}
	switch {
	case len(raw) > 2048:
		return &InvalidURLError{"url may be at most 2048 characters"}
	case u.Scheme != "https" && !(p.AllowPrivate && u.Scheme == "http"):
		return &InvalidURLError{"url must be https"}
	case u.User != nil:
		return &InvalidURLError{"url may not hold credentials"}
	case u.Fragment != "":
		return &InvalidURLError{"url may not have a fragment"}
	}
	if p.AllowPrivate {
		return nil
	}
	addrs, err := p.resolve(ctx, u.Hostname())
	if err != nil || len(addrs) == 0 {
		return &InvalidURLError{fmt.Sprintf("url host %q does not resolve", u.Hostname())}
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return &InvalidURLError{fmt.Sprintf("url host %q resolves to %s: %s", u.Hostname(), a, ErrForbiddenAddress)}
		}
	}
	return nil
}

func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if p.Resolve != nil {
		return p.Resolve(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Client returns the HTTP client deliveries are sent with: every
// connection's address is checked as it is dialled, after DNS resolution,
// so a name that resolved to a public address at save time and to a
// private one now (DNS rebinding) is still refused; no proxy from the
// environment (the check would see the proxy's address); redirects are not
// followed (a 3xx is a failed attempt: it could point anywhere); timeout
// bounds each attempt. tlsConfig may add roots (tests); nil is the default.
func (p Policy) Client(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !p.AllowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !PublicAddr(ap.Addr()) {
				return ErrForbiddenAddress
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: d.DialContext, TLSClientConfig: tlsConfig, TLSHandshakeTimeout: timeout,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
