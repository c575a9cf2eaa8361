package dirsync

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TestMergeLastMentionWins: merged pages keep a decoded page's rule; each
// object and membership counts by its last mention, on whichever page.
func TestMergeLastMentionWins(t *testing.T) {
	u := func(id, name string) domain.DirectoryUser { return domain.DirectoryUser{ID: id, DisplayName: name} }
	users := domain.UsersPage{
		Users:       []domain.DirectoryUser{u("a", "A"), u("b", "B"), u("e", "E")},
		Removed:     []string{"c", "d"},
		SoftDeleted: []string{"c"},
		NextLink:    "next-1",
	}
	mergeUsers(&users, &domain.UsersPage{
		Users:       []domain.DirectoryUser{u("c", "C back"), u("b", "B renamed")},
		Removed:     []string{"a", "f"},
		SoftDeleted: []string{"a"},
		NextLink:    "next-2",
	})
	mergeUsers(&users, &domain.UsersPage{DeltaLink: "delta"})
	wantUsers := domain.UsersPage{
		Users:       []domain.DirectoryUser{u("e", "E"), u("c", "C back"), u("b", "B renamed")},
		Removed:     []string{"d", "a", "f"},
		SoftDeleted: []string{"a"},
		DeltaLink:   "delta",
	}
	if diff := cmp.Diff(wantUsers, users, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("merged users (-want +got):\n%s", diff)
	}

	g := func(id, name string) domain.Group { return domain.Group{ID: id, DisplayName: name} }
	m := func(group, member string) domain.Membership {
		return domain.Membership{GroupID: group, MemberID: member}
	}
	groups := domain.GroupsPage{
		Groups:         []domain.Group{g("g1", "One"), g("g2", "Two")},
		Removed:        []string{"g3"},
		Members:        []domain.Membership{m("g1", "u1"), m("g2", "u2")},
		MembersRemoved: []domain.Membership{m("g1", "u3")},
		NextLink:       "next-1",
	}
	mergeGroups(&groups, &domain.GroupsPage{
		// g2 repeats with members only: it keeps its properties.
		Groups:         []domain.Group{g("g3", "Three back")},
		Removed:        []string{"g1"},
		Members:        []domain.Membership{m("g1", "u3"), m("g2", "u4")},
		MembersRemoved: []domain.Membership{m("g2", "u2")},
		DeltaLink:      "delta",
	})
	wantGroups := domain.GroupsPage{
		Groups:         []domain.Group{g("g2", "Two"), g("g3", "Three back")},
		Removed:        []string{"g1"},
		Members:        []domain.Membership{m("g1", "u1"), m("g1", "u3"), m("g2", "u4")},
		MembersRemoved: []domain.Membership{m("g2", "u2")},
		DeltaLink:      "delta",
	}
	if diff := cmp.Diff(wantGroups, groups, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("merged groups (-want +got):\n%s", diff)
	}
}
