package graph

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TestDecodeElementRules pins the rules readUser and readGroup share with
// the reflective decode they replaced (delta_decode.go): names match
// case-insensitively and through escapes, null leaves a field empty,
// invalid UTF-8 becomes U+FFFD, unknown members are skipped whatever they
// hold, and a member named twice or a value of the wrong kind fails the
// page.
func TestDecodeElementRules(t *testing.T) {
	page := func(elems string) string { return `{"value":[` + elems + `],"@odata.deltaLink":"d"}` }
	users := []struct {
		name, elems string
		want        []domain.DirectoryUser
		err         string
	}{
		{"as Graph writes it", `{"id":"A1","userPrincipalName":"a@x","displayName":"A","givenName":"g","surname":"s","mail":"m","jobTitle":"j","accountEnabled":false}`,
			[]domain.DirectoryUser{{ID: "a1", UserPrincipalName: "a@x", DisplayName: "A", GivenName: "g", Surname: "s", Mail: "m", JobTitle: "j"}}, ""},
		{"other cases and escapes", `{"ID":"a1","DISPLAYNAME":"B\u00e9","\u006dail":"q\"uote","JobTitle":"\ud83d\ude00"}`,
			[]domain.DirectoryUser{{ID: "a1", DisplayName: "Bé", Mail: `q"uote`, JobTitle: "😀", AccountEnabled: true}}, ""},
		{"nulls", `{"id":"a1","displayName":null,"accountEnabled":null,"mail":null}`,
			[]domain.DirectoryUser{{ID: "a1", AccountEnabled: true}}, ""},
		{"invalid UTF-8", "{\"id\":\"a1\",\"displayName\":\"x\xffy\"}",
			[]domain.DirectoryUser{{ID: "a1", DisplayName: "x\ufffdy", AccountEnabled: true}}, ""},
		{"unknown members skipped", `{"businessPhones":["1",{"a":[null]}],"id":"a1","x":{"id":"no"}}`,
			[]domain.DirectoryUser{{ID: "a1", AccountEnabled: true}}, ""},
		{"a null element", `null`, nil, "user without id"},
		{"named twice", `{"id":"a1","displayName":"A","displayname":"B"}`, nil, "duplicate"},
		{"named twice exactly", `{"id":"a1","id":"a2"}`, nil, "duplicate"},
		{"a number for a string", `{"id":"a1","displayName":5}`, nil, "displayName"},
		{"a string for a bool", `{"id":"a1","accountEnabled":"true"}`, nil, "accountEnabled"},
		{"an array for a user", `["id"]`, nil, "array"},
		{"broken JSON in a value", `{"id":"a1","displayName":tru}`, nil, "invalid"},
	}
	for _, c := range users {
		t.Run("users/"+c.name, func(t *testing.T) {
			var p domain.UsersPage
			err := decodeUsersPage(strings.NewReader(page(c.elems)), &p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, p.Users); d != "" {
				t.Errorf("users (-want +got):\n%s", d)
			}
		})
	}

	var p domain.GroupsPage
	err := decodeGroupsPage(strings.NewReader(page(
		`{"id":"G1","displayName":"Sales","members@delta":null},`+
			`{"id":"g2","DisplayName":null,"Members@Delta":[null,{"id":"U1","@odata.type":"#microsoft.graph.user"},{"id":"u2","@removed":null}]},`+
			`{"id":"g3","@removed":{"reason":"deleted"}}`)), &p)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.GroupsPage{
		Groups:         []domain.Group{{ID: "g1", DisplayName: "Sales"}},
		Removed:        []string{"g3"},
		Members:        []domain.Membership{{GroupID: "g2", MemberID: "u1"}},
		MembersRemoved: []domain.Membership{{GroupID: "g2", MemberID: "u2"}},
		DeltaLink:      "d",
	}
	if d := cmp.Diff(want, p); d != "" {
		t.Errorf("groups page (-want +got):\n%s", d)
	}
	for _, bad := range []string{
		`{"id":"g1","members@delta":{"id":"u1"}}`,
		`{"id":"g1","members@delta":[{"id":"u1","ID":"u2"}]}`,
		`{"id":"g1","members@delta":[{"id":7}]}`,
		`{"id":"g1","description":["x"]}`,
	} {
		if err := decodeGroupsPage(strings.NewReader(page(bad)), &p); err == nil {
			t.Errorf("%s: decoded, want an error", bad)
		}
	}
}
