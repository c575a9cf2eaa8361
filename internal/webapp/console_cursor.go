package webapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tenantsync/tenantsync/internal/postgres"
)

// errBadCursor is a cursor this console did not issue for this listing.
var errBadCursor = errors.New("bad cursor")

// consoleCursor makes the tenants list's keyset cursor opaque and
// tamper-evident: base64url JSON, a dot, and a truncated HMAC. The key comes
// from the sign-in's random binding, which lives in the Postgres session, so
// every replica checks it without a shared secret in the configuration; a
// cursor is good for the session that received it and for the listing
// (query, status, sort) it was issued for.
type consoleCursor struct{ key []byte }

func newConsoleCursor(binding string) consoleCursor {
	k := sha256.Sum256([]byte("tenantsync console cursor\x00" + binding))
	return consoleCursor{key: k[:]}
}

func (cc consoleCursor) mac(listing, payload string) string {
	m := hmac.New(sha256.New, cc.key)
	m.Write([]byte(listing + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// encode returns the opaque form of cur for listing.
func (cc consoleCursor) encode(listing string, cur postgres.TenantCursor) string {
	b, _ := json.Marshal(cur) // a struct of strings: cannot fail
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + cc.mac(listing, p)
}

// decode checks s against listing and returns the cursor inside.
func (cc consoleCursor) decode(listing, s string) (*postgres.TenantCursor, error) {
	p, sig, ok := strings.Cut(s, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(cc.mac(listing, p))) {
		return nil, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, errBadCursor
	}
	var cur postgres.TenantCursor
	if err := json.Unmarshal(b, &cur); err != nil {
		return nil, errBadCursor
	}
	return &cur, nil
}
