package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// fullPage is the commit of page n of full round 1 of resource.
func fullPage(resource string, n int) domain.SyncCommit {
	return domain.SyncCommit{Checkpoint: domain.SyncCheckpoint{Resource: resource, Link: "page" + string(rune('0'+n)),
		LinkKind: domain.LinkNext, Round: 1, RoundKind: domain.SyncFull}}
}

// roundBulk reads whether resource's current round of tid writes in bulk.
func roundBulk(t *testing.T, st *postgres.Store, tid, resource string) bool {
	t.Helper()
	var bulk bool
	err := st.Tx(context.Background(), func(tx pgx.Tx, _ *postgres.Store) error {
		return tx.QueryRow(context.Background(), `SELECT bulk FROM sync_state WHERE tenant_id = $1 AND resource = $2`, tid, resource).Scan(&bulk)
	})
	if err != nil {
		t.Fatal(err)
	}
	return bulk
}

// feedOf is tid's directory events after the first skip, as "type data"
// sorted (the order within one page is not part of the contract).
func feedOf(t *testing.T, pool *pgxpool.Pool, tid string, skip int) []string {
	t.Helper()
	var out []string
	for _, ev := range pgtest.Events(t, pool, tid)[skip:] {
		out = append(out, string(ev.Type)+" "+string(ev.Data))
	}
	slices.Sort(out)
	return out
}

// awkwardPages are a page of users and one of groups with awkward strings
// and upper-case GUIDs.
func awkwardPages() ([]domain.DirectoryUser, *domain.GroupsPage) {
	g1, g2 := uuid.NewString(), strings.ToUpper(uuid.NewString())
	users := []domain.DirectoryUser{
		{ID: uuid.NewString(), UserPrincipalName: "ada@x.example", DisplayName: "Ada", AccountEnabled: true},
		{ID: strings.ToUpper(uuid.NewString()), UserPrincipalName: "b@x.example", DisplayName: `quote " back \ tab 	 é ✓ <&>`,
			GivenName: "line\nbreak", Surname: "\x01", Mail: "", JobTitle: "\u2028", AccountEnabled: false},
	}
	return users, &domain.GroupsPage{
		Groups:  []domain.Group{{ID: g1, DisplayName: "G1", Description: `"d"`}, {ID: g2, DisplayName: "G2"}},
		Members: []domain.Membership{{GroupID: g1, MemberID: users[0].ID}, {GroupID: g2, MemberID: strings.ToUpper(users[1].ID)}},
	}
}

// assertAwkwardCopy checks that tid's copy holds users (besides rows with
// no user principal name) and awkwardPages' two memberships.
func assertAwkwardCopy(t *testing.T, st *postgres.Store, tid string, users []domain.DirectoryUser) {
	t.Helper()
	ctx := context.Background()
	u, err := st.DirectoryUsers(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	u = slices.DeleteFunc(u, func(x domain.DirectoryUser) bool { return x.UserPrincipalName == "" })
	want := slices.Clone(users)
	for i := range want {
		want[i].TenantID, want[i].ID = tid, strings.ToLower(want[i].ID)
	}
	slices.SortFunc(want, func(a, b domain.DirectoryUser) int { return strings.Compare(a.ID, b.ID) })
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("users of tenant %s (-want +got):\n%s", tid, diff)
	}
	m, err := st.DirectoryMemberships(ctx, tid)
	if err != nil || len(m) != 2 {
		t.Errorf("memberships %+v, %v; want 2", m, err)
	}
}

// TestBulkPagesWriteWhatStagedPagesWrite: the first full round of an empty
// copy COPYs its pages (issue 13); its rows and events are exactly those
// the staged path writes for the same pages, awkward strings and
// upper-case GUIDs included.
func TestBulkPagesWriteWhatStagedPagesWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	users, groups := awkwardPages()
	apply := func(tid string) {
		t.Helper()
		if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, fullPage("users", 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DirectoryGroupsApply(ctx, tid, groups, fullPage("groups", 1)); err != nil {
			t.Fatal(err)
		}
	}
	bulk, staged := uuid.NewString(), uuid.NewString()
	pgtest.ActiveTenant(t, st, bulk)
	pgtest.ActiveTenant(t, st, staged)
	// A copy that is not empty takes the staged path; these rows are in no
	// page, and no sweep runs, so they add no event.
	for _, q := range []string{`INSERT INTO directory_users (tenant_id, id) VALUES ($1, gen_random_uuid())`,
		`INSERT INTO directory_groups (tenant_id, id) VALUES ($1, gen_random_uuid())`} {
		if _, err := pool.Exec(ctx, q, staged); err != nil {
			t.Fatal(err)
		}
	}
	skip := map[string]int{bulk: len(pgtest.Events(t, pool, bulk)), staged: len(pgtest.Events(t, pool, staged))}
	apply(bulk)
	apply(staged)
	if !roundBulk(t, st, bulk, "users") || !roundBulk(t, st, bulk, "groups") {
		t.Error("the first round of an empty copy does not write in bulk")
	}
	if roundBulk(t, st, staged, "users") || roundBulk(t, st, staged, "groups") {
		t.Error("the round of a copy with rows writes in bulk")
	}
	want := feedOf(t, pool, staged, skip[staged])
	if len(want) != 6 {
		t.Fatalf("staged pages wrote %d events, want 6: %v", len(want), want)
	}
	if diff := cmp.Diff(want, feedOf(t, pool, bulk, skip[bulk])); diff != "" {
		t.Errorf("bulk events (-staged +bulk):\n%s", diff)
	}
	for _, tid := range []string{bulk, staged} {
		assertAwkwardCopy(t, st, tid, users)
	}
}

// TestBulkRoundRepeatsAndFailures: in a bulk round, a page repeating an
// object of an earlier page is applied as a staged page (an update, not a
// second row or a second creation); a malformed page leaves nothing; the
// round stays a bulk one from page to page, as its resumption would.
func TestBulkRoundRepeatsAndFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	skip := len(pgtest.Events(t, pool, tid))
	u := func(name string) domain.DirectoryUser {
		return domain.DirectoryUser{ID: uuid.NewString(), UserPrincipalName: name + "@x.example", DisplayName: name, AccountEnabled: true}
	}
	u1, u2, u3, u4 := u("u1"), u("u2"), u("u3"), u("u4")
	page := func(n int, users ...domain.DirectoryUser) error {
		_, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, fullPage("users", n))
		return err
	}
	if err := page(1, u1, u2); err != nil {
		t.Fatal(err)
	}
	renamed := u2
	renamed.DisplayName = "u2 renamed"
	if err := page(2, renamed, u3); err != nil {
		t.Fatal(err)
	}
	bad := u("bad")
	bad.DisplayName = "nul \x00 byte"
	if err := page(3, u4, bad); err == nil {
		t.Fatal("a page with a NUL in a name applied")
	}
	if !roundBulk(t, st, tid, "users") {
		t.Error("the round is no longer a bulk one after a repeated object")
	}
	if err := page(3, u4); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range pgtest.Events(t, pool, tid)[skip:] {
		var name string
		for _, x := range []domain.DirectoryUser{u1, u2, u3, u4} {
			if strings.Contains(string(ev.Data), x.ID) {
				name = x.UserPrincipalName
			}
		}
		got = append(got, string(ev.Type)+" "+name)
	}
	// A page's creations are batch rows, written before or after its other
	// events (docs/events.md, Order): the pages' events are compared as
	// sets, and u2's two events in the order of its changes.
	want := []string{"user.created u1@x.example", "user.created u2@x.example", "user.updated u2@x.example",
		"user.created u3@x.example", "user.created u4@x.example"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("events of the round (-want +got):\n%s", diff)
	}
	if i, j := slices.Index(got, want[1]), slices.Index(got, want[2]); i < 0 || j < i {
		t.Errorf("u2 was updated before it was created: %v", got)
	}
	if c, err := st.DirectoryCounts(ctx, tid); err != nil || c.Users != 4 {
		t.Errorf("%d users stored, %v; want 4", c.Users, err)
	}
}

// TestStagedPageCreationsAreBatchRows: a page written by the
// compare-and-upsert statements (a round of one page, a delta page) stores
// its creation events as batch rows of up to 128, page order kept, and
// every other event as a row of its own; the feed reads each event once.
func TestStagedPageCreationsAreBatchRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	skip := len(pgtest.Events(t, pool, tid))
	// The only page of a round after the first: the first round's would be
	// inserted (directory_insert_test.go).
	onePage := func(resource string) domain.SyncCommit { return onlyPage(resource, 2) }
	users := make([]domain.DirectoryUser, 200)
	for i := range users {
		users[i] = domain.DirectoryUser{ID: uuid.NewString(), UserPrincipalName: fmt.Sprintf("u%03d@x.example", i), AccountEnabled: true}
	}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, onePage("users")); err != nil {
		t.Fatal(err)
	}
	g := domain.Group{ID: uuid.NewString(), DisplayName: "all"}
	members := make([]domain.Membership, 130)
	for i := range members {
		members[i] = domain.Membership{GroupID: g.ID, MemberID: users[i].ID}
	}
	if _, err := st.DirectoryGroupsApply(ctx, tid, &domain.GroupsPage{Groups: []domain.Group{g}, Members: members}, onePage("groups")); err != nil {
		t.Fatal(err)
	}
	renamed := users[7]
	renamed.DisplayName = "renamed"
	added := domain.DirectoryUser{ID: uuid.NewString(), UserPrincipalName: "late@x.example", AccountEnabled: true}
	delta := domain.SyncCommit{Checkpoint: domain.SyncCheckpoint{Resource: "users", Link: "delta2", LinkKind: domain.LinkDelta,
		Round: 2, RoundKind: domain.SyncDelta}}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: []domain.DirectoryUser{renamed, added}}, delta); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT type || ' ' || coalesce(n::text, 'single') FROM change_events
		WHERE tenant_id = $1 AND type IN ('user.created', 'user.updated', 'group.created', 'group.member_added')`, tid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"user.created 128", "user.created 72", "group.created 1", "group.member_added 128",
		"group.member_added 2", "user.updated single", "user.created 1"}
	less := func(a, b string) bool { return a < b }
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("change_events rows (-want +got):\n%s", diff)
	}
	// The feed has one event per object, the first 200 creations in page order.
	evs := pgtest.Events(t, pool, tid)[skip:]
	if len(evs) != 200+1+130+2 {
		t.Fatalf("the feed reads %d events, want %d", len(evs), 200+1+130+2)
	}
	for i := range 200 {
		if evs[i].Type != domain.UserCreated || !strings.Contains(string(evs[i].Data), users[i].ID) {
			t.Fatalf("feed event %d is %s %s, want user.created of user %d", i, evs[i].Type, evs[i].Data, i)
		}
	}
}
