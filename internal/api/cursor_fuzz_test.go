package api

import (
	"testing"

	"github.com/tenantsync/tenantsync/internal/postgres"
)

// fuzzCursorToken keys the codec under test; the fuzzer never sees the key,
// so it can only produce a valid cursor by copying one this codec issued.
const fuzzCursorToken = "fuzz-api-token"

// jsonText is s as it comes back from a JSON round trip: encoding/json
// replaces each byte of invalid UTF-8 with U+FFFD, as ranging over s does.
func jsonText(s string) string { return string([]rune(s)) }

// FuzzCursor checks the API's page cursors: an issued cursor decodes to what
// it was issued for, for its own listing and key only; and any string that
// decodes is one this codec issued, so a cursor cannot be forged or altered.
func FuzzCursor(f *testing.F) {
	c := newCursorCodec(fuzzCursorToken)
	tenants := "tenants\x00\x00\x00created"
	good := c.encode(tenants, postgres.TenantCursor{Sort: postgres.SortCreated, Key: "2026-11-29T08:00:00.000001Z", ID: "98c7e7b9-8621-4041-9670-f4938facd9f6"})
	f.Add(tenants, "tenants\x00\x00\x00name", "created", "2026-11-29T08:00:00.000001Z", "98c7e7b9-8621-4041-9670-f4938facd9f6", good)
	f.Add("users\x0098c7e7b9-8621-4041-9670-f4938facd9f6", "groups\x0098c7e7b9-8621-4041-9670-f4938facd9f6", "", "", "c18ec85d", "eyJhIjoiYyJ9.AAAAAAAAAAAAAAAA")
	f.Add("tenants\x00ä\xff\x00active\x00size", "tenants\x00ä\xff\x00active\x00name", "size", "\xff<&>\u2028", "", good+"x")
	f.Add("", "x", "name", "Contoso", "", "..")
	f.Fuzz(func(t *testing.T, listing, other, sort, key, id, cursor string) {
		issued := postgres.TenantCursor{Sort: postgres.TenantSort(sort), Key: key, ID: id}
		s := c.encode(listing, issued)
		var got postgres.TenantCursor
		if err := c.decode(listing, s, &got); err != nil {
			t.Fatalf("issued cursor %q refused: %v", s, err)
		}
		want := postgres.TenantCursor{Sort: postgres.TenantSort(jsonText(sort)), Key: jsonText(key), ID: jsonText(id)}
		if got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
		var ic idCursor
		sid := c.encode(listing, idCursor{After: id})
		if err := c.decode(listing, sid, &ic); err != nil || ic.After != jsonText(id) {
			t.Fatalf("id cursor round trip: %+v, %v", ic, err)
		}
		if other != listing {
			if err := c.decode(other, s, &got); err == nil {
				t.Fatalf("cursor of listing %q accepted for listing %q", listing, other)
			}
		}
		if err := newCursorCodec(fuzzCursorToken+"'").decode(listing, s, &got); err == nil {
			t.Fatal("cursor accepted under another API token")
		}
		var decoded postgres.TenantCursor
		if err := c.decode(listing, cursor, &decoded); err == nil && cursor != s && cursor != sid && cursor != c.encode(listing, decoded) {
			t.Fatalf("accepted cursor %q that was never issued (decoded %+v)", cursor, decoded)
		}
	})
}
