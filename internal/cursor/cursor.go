// Package cursor makes keyset page cursors opaque and tamper-evident, for
// the JSON API and the console alike: base64url JSON, a dot, and a truncated
// HMAC over the listing the cursor belongs to and the payload. A cursor that
// was changed, or issued for another listing or under another key, is
// refused instead of silently paging from somewhere else. It imports nothing
// of tenantsync.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// ErrInvalid is a cursor this codec did not issue for the listing.
var ErrInvalid = errors.New("the cursor was not issued for this listing")

// Codec issues and checks cursors under one key.
type Codec struct{ key []byte }

// New returns a codec keyed from purpose (which keeps the API's and the
// console's cursors apart) and secret (the API token, or a sign-in's
// binding), so every replica that knows the secret checks the same cursors.
func New(purpose, secret string) Codec {
	k := sha256.Sum256([]byte(purpose + "\x00" + secret))
	return Codec{key: k[:]}
}

func (c Codec) mac(listing, payload string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(listing + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// Encode returns the cursor for v, bound to listing. v is a plain struct
// that encoding/json cannot fail on.
func (c Codec) Encode(listing string, v any) string {
	b, _ := json.Marshal(v)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + c.mac(listing, p)
}

// Decode checks s's MAC for listing and unmarshals it into v; any other
// string is ErrInvalid.
func (c Codec) Decode(listing, s string, v any) error {
	p, sig, ok := strings.Cut(s, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(c.mac(listing, p))) {
		return ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return ErrInvalid
	}
	if err := json.Unmarshal(b, v); err != nil {
		return ErrInvalid
	}
	return nil
}
