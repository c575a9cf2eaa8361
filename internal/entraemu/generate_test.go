package entraemu

import (
	"reflect"
	"testing"
)

func TestGeneratorDeterministicAndInvertible(t *testing.T) {
	t.Parallel()
	g1 := newGenerator(ContosoTenantID, "contoso.example", &Generate{Users: 1000, Groups: 10, MembersPerGroup: 5, Seed: 42})
	g2 := newGenerator(ContosoTenantID, "contoso.example", &Generate{Users: 1000, Groups: 10, MembersPerGroup: 5, Seed: 42})
	other := newGenerator(ContosoTenantID, "contoso.example", &Generate{Users: 1000, Seed: 43})
	seen := map[string]bool{}
	for slot := range 1000 {
		u := g1.fullUser(slot)
		if !reflect.DeepEqual(u, g2.fullUser(slot)) {
			t.Fatalf("slot %d differs between identical generators", slot)
		}
		if other.userID(slot) == u.ID {
			t.Fatalf("slot %d: same ID with another seed", slot)
		}
		if seen[u.ID] || seen[u.UserPrincipalName] {
			t.Fatalf("duplicate %v", u)
		}
		seen[u.ID], seen[u.UserPrincipalName] = true, true
		if s, ok := g1.userSlot(u.ID); !ok || s != slot {
			t.Fatalf("userSlot(%s) = %d %v, want %d", u.ID, s, ok, slot)
		}
		if s, ok := g1.upnSlot(u.UserPrincipalName); !ok || s != slot {
			t.Fatalf("upnSlot(%s) = %d %v", u.UserPrincipalName, s, ok)
		}
		if !isGUID(u.ID) {
			t.Fatalf("bad GUID %s", u.ID)
		}
	}
	if _, ok := g1.userSlot(other.userID(3)); ok {
		t.Error("another generator's ID resolved")
	}
	if _, ok := g1.groupSlot(g1.groupID(9)); !ok {
		t.Error("group ID did not resolve")
	}
}

// TestParseGUIDDashesOutOfPlace: a 36-byte string with its four dashes in
// place and another one elsewhere is no GUID, and does not panic (found by
// FuzzTokenRequest in a token request's path segment).
func TestParseGUIDDashesOutOfPlace(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"00000000-0000-0000-0000-00000000-000",
		"00000000-0000-0000-0000--00000000000",
		"00000000-0000-0000-0000-0000000000-0",
		"00000000-0000-0000-0000-00000000000-",
	} {
		if _, _, ok := parseGUID(s); ok {
			t.Errorf("%s parsed as a GUID", s)
		}
	}
	if hi, lo, ok := parseGUID("98C7E7B9-8621-4041-9670-f4938facd9f6"); !ok || hi != 0x98c7e7b986214041 || lo != 0x9670f4938facd9f6 {
		t.Errorf("parse: %x %x %v", hi, lo, ok)
	}
}
