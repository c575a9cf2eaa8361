package webapp

import (
	"testing"

	"github.com/tenantsync/tenantsync/internal/cursor"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// FuzzConsoleCursor checks the console's keyset cursors: an issued cursor
// decodes to what it was issued for, only for its own listing and its own
// sign-in; any string that decodes is one that was issued.
func FuzzConsoleCursor(f *testing.F) {
	listing := consoleListing("contoso", domain.TenantActive, postgres.SortName)
	good := cursor.New("tenantsync console cursor", "b1").Encode(listing, postgres.TenantCursor{Sort: postgres.SortName, Key: "contoso", ID: contosoID})
	f.Add("b1", "b2", "contoso", "active", "name", "contoso", contosoID, good)
	f.Add("b1", "b1", "", "", "created", "2026-11-29T08:00:00.000001Z", fabrikamID, good+".")
	f.Add("", "x", "a\x00b\xff", "failed", "size", "\xff\xfe<script>", "", "eyJzIjoibmFtZSJ9.AAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, binding, otherBinding, q, status, sort, key, id, forged string) {
		cc := cursor.New("tenantsync console cursor", binding)
		listing := consoleListing(q, domain.TenantStatus(status), postgres.TenantSort(sort))
		s := cc.Encode(listing, postgres.TenantCursor{Sort: postgres.TenantSort(sort), Key: key, ID: id})
		var got postgres.TenantCursor
		if err := cc.Decode(listing, s, &got); err != nil {
			t.Fatalf("issued cursor %q refused: %v", s, err)
		}
		want := postgres.TenantCursor{Sort: postgres.TenantSort(jsonText(sort)), Key: jsonText(key), ID: jsonText(id)}
		if got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
		if otherBinding != binding {
			if err := cursor.New("tenantsync console cursor", otherBinding).Decode(listing, s, &got); err == nil {
				t.Fatalf("cursor of sign-in %q accepted for sign-in %q", binding, otherBinding)
			}
		}
		for _, other := range []string{
			consoleListing(q+"x", domain.TenantStatus(status), postgres.TenantSort(sort)),
			consoleListing(q, domain.TenantStatus(status+"x"), postgres.TenantSort(sort)),
			consoleListing(q, domain.TenantStatus(status), postgres.TenantSort(sort+"x")),
		} {
			if err := cc.Decode(other, s, &got); err == nil {
				t.Fatalf("cursor of listing %q accepted for listing %q", listing, other)
			}
		}
		var cur postgres.TenantCursor
		if err := cc.Decode(listing, forged, &cur); err == nil && forged != s && forged != cc.Encode(listing, cur) {
			t.Fatalf("accepted cursor %q that was never issued (decoded %+v)", forged, cur)
		}
	})
}

// jsonText is s as it comes back from a JSON round trip: encoding/json
// replaces each byte of invalid UTF-8 with U+FFFD, as ranging over s does.
func jsonText(s string) string { return string([]rune(s)) }
