package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// deltaSeeds are delta pages as Graph sends them (protocol §5.2, §5.3): users
// created, changed and @removed, repeated with other letter cases; groups
// with members@delta slices, a large group repeated with members only.
var deltaSeeds = []string{
	`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users(id,displayName)","@odata.nextLink":"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a","value":[` +
		`{"id":"C18EC85D-FDBD-4CD0-982E-6E0D13B31CD6","userPrincipalName":"a@contoso.example","displayName":"A","accountEnabled":true},` +
		`{"id":"283e9c54-e603-4aec-ad92-974248819c16","@removed":{"reason":"changed"}},` +
		`{"id":"c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6","@removed":{"reason":"deleted"}},` +
		`{"id":"283E9C54-E603-4AEC-AD92-974248819C16","displayName":"B","givenName":"b","surname":"c","mail":null,"jobTitle":"x","accountEnabled":false}]}`,
	`{"value":[{"id":"u1","displayName":"One"},{"id":"u2"},{"id":"U1","@removed":{}},{"id":"u1","displayName":"Again"}],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=z"}`,
	`{"@odata.deltaLink":"https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=d","value":[` +
		`{"id":"G1","displayName":"Sales","description":"d","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"U1"},{"@odata.type":"#microsoft.graph.user","id":"u2","@removed":"deleted"}]},` +
		`{"id":"g1","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u1","@removed":"deleted"},{"@odata.type":"#microsoft.graph.group","id":"g2"}]},` +
		`{"id":"g2","@removed":{"reason":"deleted"},"members@delta":[{"id":"u3"}]},` +
		`{"id":"G2","displayName":"Back","members@delta":[{"id":"u2"},{"id":""}]}]}`,
	`{"value":[],"value":[{"id":"x","@removed":null}],"@odata.nextLink":1}`,
	`{"VALUE":[{"ID":"x"}],"@odata.deltaLink":"d"}`,
	// Soft (reason "changed") and hard removals, the last mention winning.
	`{"value":[{"id":"a","@removed":{"reason":"changed"}},{"id":"b","@removed":{"reason":"deleted"}},` +
		`{"id":"c","@removed":{"reason":"deleted"}},{"id":"C","@removed":{"reason":"changed"}}],"@odata.nextLink":"n"}`,
}

// FuzzDeltaPage decodes one body as a users/delta page and as a
// groups/delta page and checks them against a plain model of the rules:
// the last mention of a user, group or membership wins; nothing is both
// present and @removed; IDs are lower case; decoding into a page that held
// another page gives the same result as decoding into a fresh one.
func FuzzDeltaPage(f *testing.F) {
	for _, s := range deltaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var up domain.UsersPage
		if err := decodeUsersPage(bytes.NewReader(body), &up); err == nil {
			want, err := usersModel(body)
			if err != nil {
				t.Fatalf("page decoded but the model refuses it: %v", err)
			}
			checkUsersPage(t, &up, want)
			// Reused memory must not leak into the next page.
			var reused domain.UsersPage
			for _, s := range deltaSeeds {
				decodeUsersPage(strings.NewReader(s), &reused) //nolint:errcheck // only fills the page's memory
			}
			if err := decodeUsersPage(bytes.NewReader(body), &reused); err != nil {
				t.Fatalf("second decode: %v", err)
			}
			checkUsersPage(t, &reused, want)
		}

		var gp domain.GroupsPage
		if err := decodeGroupsPage(bytes.NewReader(body), &gp); err == nil {
			want, err := groupsModel(body)
			if err != nil {
				t.Fatalf("page decoded but the model refuses it: %v", err)
			}
			checkGroupsPage(t, &gp, want)
			var reused domain.GroupsPage
			for _, s := range deltaSeeds {
				decodeGroupsPage(strings.NewReader(s), &reused) //nolint:errcheck // only fills the page's memory
			}
			if err := decodeGroupsPage(bytes.NewReader(body), &reused); err != nil {
				t.Fatalf("second decode: %v", err)
			}
			checkGroupsPage(t, &reused, want)
		}
	})
}

// pageModel is what a page must decode to, as maps: ID → the entry, or ID
// → true for a removal.
type pageModel struct {
	next, delta string
	users       map[string]domain.DirectoryUser
	groups      map[string]domain.Group
	removed     map[string]bool
	members     map[domain.Membership]bool // true: added, false: removed
}

// walkPage reads the top level of a page the way Graph's JSON is keyed
// (case-sensitive, every "value" in order) and hands each element's JSON
// to elem.
func walkPage(body []byte, m *pageModel, elem func(json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not an object: %v", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		switch t {
		case "@odata.nextLink":
			err = json.Unmarshal(raw, &m.next)
		case "@odata.deltaLink":
			err = json.Unmarshal(raw, &m.delta)
		case "value":
			var elems []json.RawMessage
			if err = json.Unmarshal(raw, &elems); err == nil && elems == nil {
				err = fmt.Errorf("value is null")
			}
			for _, e := range elems {
				if err == nil {
					err = elem(e)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func usersModel(body []byte) (*pageModel, error) {
	m := &pageModel{users: map[string]domain.DirectoryUser{}, removed: map[string]bool{}}
	err := walkPage(body, m, func(raw json.RawMessage) error {
		var u userJSON
		if err := json.Unmarshal(raw, &u); err != nil {
			return err
		}
		if u.ID == "" {
			return fmt.Errorf("user without id")
		}
		id := strings.ToLower(u.ID)
		delete(m.users, id)
		delete(m.removed, id)
		if len(u.Removed) > 0 {
			// The value says soft: reason "changed" (protocol §5.2).
			var r struct{ Reason string }
			m.removed[id] = json.Unmarshal(u.Removed, &r) == nil && r.Reason == "changed"
			return nil
		}
		m.users[id] = domain.DirectoryUser{ID: id, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
			GivenName: u.GivenName, Surname: u.Surname, Mail: u.Mail, JobTitle: u.JobTitle,
			AccountEnabled: u.AccountEnabled == nil || *u.AccountEnabled}
		return nil
	})
	return m, err
}

func groupsModel(body []byte) (*pageModel, error) {
	m := &pageModel{groups: map[string]domain.Group{}, removed: map[string]bool{}, members: map[domain.Membership]bool{}}
	err := walkPage(body, m, func(raw json.RawMessage) error {
		var g groupJSON
		if err := json.Unmarshal(raw, &g); err != nil {
			return err
		}
		if g.ID == "" {
			return fmt.Errorf("group without id")
		}
		id := strings.ToLower(g.ID)
		if len(g.Removed) > 0 {
			delete(m.groups, id)
			m.removed[id] = true
			return nil
		}
		if g.DisplayName != nil {
			delete(m.removed, id)
			m.groups[id] = domain.Group{ID: id, DisplayName: *g.DisplayName, Description: g.Description}
		}
		for _, mm := range g.Members {
			if mm.ID != "" {
				m.members[domain.Membership{GroupID: id, MemberID: strings.ToLower(mm.ID)}] = len(mm.Removed) == 0
			}
		}
		return nil
	})
	return m, err
}

func checkUsersPage(t *testing.T, p *domain.UsersPage, want *pageModel) {
	t.Helper()
	if p.NextLink != want.next || p.DeltaLink != want.delta {
		t.Errorf("links %q %q, want %q %q", p.NextLink, p.DeltaLink, want.next, want.delta)
	}
	got := map[string]domain.DirectoryUser{}
	for _, u := range p.Users {
		if _, dup := got[u.ID]; dup {
			t.Errorf("user %q twice in Users", u.ID)
		}
		got[u.ID] = u
	}
	removed := map[string]bool{}
	for _, id := range p.Removed {
		if _, dup := removed[id]; dup {
			t.Errorf("user %q twice in Removed", id)
		}
		if _, both := got[id]; both {
			t.Errorf("user %q both in Users and Removed", id)
		}
		removed[id] = false
	}
	for _, id := range p.SoftDeleted {
		if soft, ok := removed[id]; !ok || soft {
			t.Errorf("soft-deleted user %q is not once in Removed", id)
		}
		removed[id] = true
	}
	if d := cmp.Diff(want.users, got); d != "" {
		t.Errorf("users (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.removed, removed); d != "" {
		t.Errorf("removed users (-want +got):\n%s", d)
	}
}

func checkGroupsPage(t *testing.T, p *domain.GroupsPage, want *pageModel) {
	t.Helper()
	if p.NextLink != want.next || p.DeltaLink != want.delta {
		t.Errorf("links %q %q, want %q %q", p.NextLink, p.DeltaLink, want.next, want.delta)
	}
	got := map[string]domain.Group{}
	for _, g := range p.Groups {
		if _, dup := got[g.ID]; dup {
			t.Errorf("group %q twice in Groups", g.ID)
		}
		got[g.ID] = g
	}
	removed := map[string]bool{}
	for _, id := range p.Removed {
		if removed[id] {
			t.Errorf("group %q twice in Removed", id)
		}
		if _, both := got[id]; both {
			t.Errorf("group %q both in Groups and Removed", id)
		}
		removed[id] = true
	}
	members := map[domain.Membership]bool{}
	for _, m := range p.Members {
		if _, dup := members[m]; dup {
			t.Errorf("membership %v twice in Members", m)
		}
		members[m] = true
	}
	for _, m := range p.MembersRemoved {
		if added, dup := members[m]; dup {
			t.Errorf("membership %v twice (added %v) in the page", m, added)
		}
		members[m] = false
	}
	if d := cmp.Diff(want.groups, got); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.removed, removed); d != "" {
		t.Errorf("removed groups (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.members, members); d != "" {
		t.Errorf("memberships, true for added (-want +got):\n%s", d)
	}
}
