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
