package dirsync

import (
	"slices"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Merging pages (syncResource applies the pages waiting for the store as
// one). A merged page keeps the rule of a decoded one (domain.UsersPage,
// domain.GroupsPage): an object named twice counts by its last mention,
// so a user or group is kept or removed, never both, and a membership is
// added or removed, never both. Graph may name an object again on a later
// page (docs/protocol.md §5.2), and the later page is the newer
// state.

// mergeUsers appends src to dst: a user src names is dropped from dst's
// lists first.
func mergeUsers(dst, src *domain.UsersPage) {
	if n := len(src.Users) + len(src.Removed); n > 0 && len(dst.Users)+len(dst.Removed) > 0 {
		named := make(map[string]struct{}, n)
		for i := range src.Users {
			named[src.Users[i].ID] = struct{}{}
		}
		for _, id := range src.Removed {
			named[id] = struct{}{}
		}
		dst.Users = slices.DeleteFunc(dst.Users, func(u domain.DirectoryUser) bool { return in(named, u.ID) })
		dst.Removed = slices.DeleteFunc(dst.Removed, func(id string) bool { return in(named, id) })
		dst.SoftDeleted = slices.DeleteFunc(dst.SoftDeleted, func(id string) bool { return in(named, id) })
	}
	dst.Users = append(dst.Users, src.Users...)
	dst.Removed = append(dst.Removed, src.Removed...)
	dst.SoftDeleted = append(dst.SoftDeleted, src.SoftDeleted...)
	dst.NextLink, dst.DeltaLink = src.NextLink, src.DeltaLink
}

// mergeGroups appends src to dst: a group whose properties or removal src
// carries, and a membership src adds or removes, is dropped from dst's
// lists first. A group src repeats with members only (protocol §5.3) keeps
// its properties from dst, as within one page.
func mergeGroups(dst, src *domain.GroupsPage) {
	if n := len(src.Groups) + len(src.Removed); n > 0 && len(dst.Groups)+len(dst.Removed) > 0 {
		named := make(map[string]struct{}, n)
		for i := range src.Groups {
			named[src.Groups[i].ID] = struct{}{}
		}
		for _, id := range src.Removed {
			named[id] = struct{}{}
		}
		dst.Groups = slices.DeleteFunc(dst.Groups, func(g domain.Group) bool { return in(named, g.ID) })
		dst.Removed = slices.DeleteFunc(dst.Removed, func(id string) bool { return in(named, id) })
	}
	if n := len(src.Members) + len(src.MembersRemoved); n > 0 && len(dst.Members)+len(dst.MembersRemoved) > 0 {
		named := make(map[domain.Membership]struct{}, n)
		for _, m := range src.Members {
			named[m] = struct{}{}
		}
		for _, m := range src.MembersRemoved {
			named[m] = struct{}{}
		}
		dst.Members = slices.DeleteFunc(dst.Members, func(m domain.Membership) bool { return in(named, m) })
		dst.MembersRemoved = slices.DeleteFunc(dst.MembersRemoved, func(m domain.Membership) bool { return in(named, m) })
	}
	dst.Groups = append(dst.Groups, src.Groups...)
	dst.Removed = append(dst.Removed, src.Removed...)
	dst.Members = append(dst.Members, src.Members...)
	dst.MembersRemoved = append(dst.MembersRemoved, src.MembersRemoved...)
	dst.NextLink, dst.DeltaLink = src.NextLink, src.DeltaLink
}

func in[K comparable](set map[K]struct{}, k K) bool {
	_, ok := set[k]
	return ok
}
