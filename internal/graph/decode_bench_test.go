package graph

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// deltaPageBody is a users/delta page of n users and a groups/delta page
// of n/10 groups with 10 members each, as Graph writes them (protocol §5.2,
// §5.3).
func deltaPageBody(n int) (users, groups []byte) {
	var u, g bytes.Buffer
	u.WriteString(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users(id,displayName)","@odata.nextLink":"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc","value":[`)
	for i := range n {
		if i > 0 {
			u.WriteByte(',')
		}
		fmt.Fprintf(&u, `{"businessPhones":[],"displayName":"User %d","givenName":"Given%d","jobTitle":"Engineer","mail":"user%d@contoso.example","surname":"Surname%d","userPrincipalName":"user%d@contoso.example","accountEnabled":true,"id":"%08x-1111-4222-8333-444444444444"}`, i, i, i, i, i, i)
	}
	u.WriteString(`]}`)
	g.WriteString(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#groups","@odata.deltaLink":"https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=xyz","value":[`)
	for i := range n / 10 {
		if i > 0 {
			g.WriteByte(',')
		}
		fmt.Fprintf(&g, `{"displayName":"Group %d","description":"Team %d","id":"%08x-aaaa-4bbb-8ccc-dddddddddddd","members@delta":[`, i, i, i)
		for j := range 10 {
			if j > 0 {
				g.WriteByte(',')
			}
			fmt.Fprintf(&g, `{"@odata.type":"#microsoft.graph.user","id":"%08x-1111-4222-8333-444444444444"}`, i*10+j)
		}
		g.WriteString(`]}`)
	}
	g.WriteString(`]}`)
	return u.Bytes(), g.Bytes()
}

// BenchmarkDecodePages decodes a 999-user users/delta page and a groups
// page of 99 groups × 10 members (go test -bench DecodePages ./internal/graph/).
func BenchmarkDecodePages(b *testing.B) {
	users, groups := deltaPageBody(999)
	b.Run("users", func(b *testing.B) {
		var p domain.UsersPage
		b.SetBytes(int64(len(users)))
		for b.Loop() {
			if err := decodeUsersPage(bytes.NewReader(users), &p); err != nil || len(p.Users) != 999 {
				b.Fatal(err, len(p.Users))
			}
		}
	})
	b.Run("groups", func(b *testing.B) {
		var p domain.GroupsPage
		b.SetBytes(int64(len(groups)))
		for b.Loop() {
			if err := decodeGroupsPage(bytes.NewReader(groups), &p); err != nil || len(p.Members) != 990 {
				b.Fatal(err, len(p.Members))
			}
		}
	})
}
