package cursor

import "testing"

// page is the shape of the cursors the API and the console issue.
type page struct {
	Sort string `json:"s,omitempty"`
	Key  string `json:"k,omitempty"`
	ID   string `json:"i,omitempty"`
}

// jsonText is s as it comes back from a JSON round trip: encoding/json
// replaces each byte of invalid UTF-8 with U+FFFD, as ranging over s does.
func jsonText(s string) string { return string([]rune(s)) }

// FuzzCursor: an issued cursor decodes to what it was issued for, for its
// own listing and key only; and any string that decodes is one this codec
// issued, so a cursor cannot be forged or altered.
func FuzzCursor(f *testing.F) {
	const secret = "fuzz-secret"
	c := New("tenantsync api cursor", secret)
	tenants := "tenants\x00\x00\x00created"
	good := c.Encode(tenants, page{Sort: "created", Key: "2026-11-29T08:00:00.000001Z", ID: "98c7e7b9-8621-4041-9670-f4938facd9f6"})
	f.Add(tenants, "tenants\x00\x00\x00name", "created", "2026-11-29T08:00:00.000001Z", "98c7e7b9-8621-4041-9670-f4938facd9f6", good)
	f.Add("users\x0098c7e7b9", "groups\x0098c7e7b9", "", "", "c18ec85d", "eyJhIjoiYyJ9.AAAAAAAAAAAAAAAA")
	f.Add("tenants\x00ä\xff\x00active\x00size", "tenants\x00ä\xff\x00active\x00name", "size", "\xff<&>\u2028", "", good+"x")
	f.Add("", "x", "name", "Contoso", "", "..")
	f.Fuzz(func(t *testing.T, listing, other, sort, key, id, s string) {
		issued := page{Sort: sort, Key: key, ID: id}
		enc := c.Encode(listing, issued)
		var got page
		if err := c.Decode(listing, enc, &got); err != nil {
			t.Fatalf("issued cursor %q refused: %v", enc, err)
		}
		if want := (page{Sort: jsonText(sort), Key: jsonText(key), ID: jsonText(id)}); got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
		if other != listing {
			if err := c.Decode(other, enc, &got); err == nil {
				t.Fatalf("cursor of listing %q accepted for listing %q", listing, other)
			}
		}
		if err := New("tenantsync api cursor", secret+"'").Decode(listing, enc, &got); err == nil {
			t.Fatal("cursor accepted under another key")
		}
		if err := New("tenantsync console cursor", secret).Decode(listing, enc, &got); err == nil {
			t.Fatal("cursor accepted for another purpose")
		}
		var decoded page
		if err := c.Decode(listing, s, &decoded); err == nil && s != enc && s != c.Encode(listing, decoded) {
			t.Fatalf("accepted cursor %q that was never issued (decoded %+v)", s, decoded)
		}
	})
}
