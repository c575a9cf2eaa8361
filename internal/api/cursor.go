package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// cursorCodec makes page cursors opaque and tamper-evident: base64url JSON
// followed by a truncated HMAC keyed from the API token, which every
// replica shares. A changed cursor is refused with 400 instead of silently
// paging from somewhere else.
type cursorCodec struct{ key []byte }

func newCursorCodec(token string) cursorCodec {
	k := sha256.Sum256([]byte("tenantsync api cursor\x00" + token))
	return cursorCodec{key: k[:]}
}

func (c cursorCodec) mac(payload string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// encode returns the cursor for v, bound to the listing it belongs to.
func (c cursorCodec) encode(listing string, v any) string {
	b, _ := json.Marshal(v) // plain structs of strings: cannot fail
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + c.mac(listing+"\x00"+p)
}

// decode checks the cursor's MAC for listing and unmarshals it into v.
func (c cursorCodec) decode(listing, cursor string, v any) error {
	p, sig, ok := strings.Cut(cursor, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(c.mac(listing+"\x00"+p))) {
		return errInvalid("the cursor is not one this API issued for this listing")
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return errInvalid("malformed cursor")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errInvalid("malformed cursor")
	}
	return nil
}
