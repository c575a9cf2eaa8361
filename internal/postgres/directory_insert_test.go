package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// onlyPage is the commit of a full round's only page (it carries the
// deltaLink), of round round of resource.
func onlyPage(resource string, round int64) domain.SyncCommit {
	return domain.SyncCommit{First: true, Sweep: true, Checkpoint: domain.SyncCheckpoint{Resource: resource,
		Link: "delta", LinkKind: domain.LinkDelta, Round: round, RoundKind: domain.SyncFull}}
}

// batchForms is how tid's batch rows of creation events are written, by
// type: "go" when their text is the compact json this package builds
// (inserted and bulk pages), "sql" when Postgres printed it (the staged
// path's json_agg of jsonb objects, which puts a space after each colon).
func batchForms(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, tid string) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT type, CASE WHEN batch::text LIKE '[{"%":"%' THEN 'go' ELSE 'sql' END
		FROM change_events WHERE tenant_id = $1 AND batch IS NOT NULL`, tid)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{}
	for rows.Next() {
		var typ, form string
		if err := rows.Scan(&typ, &form); err != nil {
			t.Fatal(err)
		}
		if f, ok := forms[typ]; ok && f != form {
			form = "mixed"
		}
		forms[typ] = form
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return forms
}

// TestFirstRoundPageIsInserted: the only page of a resource's first round
// is inserted with its events built here (issue 13), and writes exactly
// the rows and events the staged path writes for it; a copy that is not
// empty after all (a row, a remembered soft delete, a membership) refuses
// the inserted page, which the staged path then writes, restoring and
// sweeping as it does.
func TestFirstRoundPageIsInserted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	users, groups := awkwardPages()
	tenant := func() (string, int) {
		tid := uuid.NewString()
		pgtest.ActiveTenant(t, st, tid)
		return tid, len(pgtest.Events(t, pool, tid))
	}
	apply := func(tid string, round int64) {
		t.Helper()
		res, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, onlyPage("users", round))
		if err != nil || res.Upserts != 2 {
			t.Fatalf("users page: %+v, %v; want 2 upserts", res, err)
		}
		res, err = st.DirectoryGroupsApply(ctx, tid, groups, onlyPage("groups", round))
		if err != nil || res.Upserts != 4 {
			t.Fatalf("groups page: %+v, %v; want 4 upserts", res, err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}

	inserted, skipInserted := tenant()
	staged, skipStaged := tenant() // round 2 of an empty copy: the staged path
	apply(inserted, 1)
	apply(staged, 2)
	if diff := cmp.Diff(map[string]string{"user.created": "go", "group.created": "go", "group.member_added": "go"},
		batchForms(t, pool, inserted)); diff != "" {
		t.Errorf("the first round's pages were not inserted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"user.created": "sql", "group.created": "sql", "group.member_added": "sql"},
		batchForms(t, pool, staged)); diff != "" {
		t.Errorf("a later round's pages were not staged (-want +got):\n%s", diff)
	}
	want := feedOf(t, pool, staged, skipStaged)
	if len(want) != 6 {
		t.Fatalf("staged pages wrote %d events, want 6: %v", len(want), want)
	}
	if diff := cmp.Diff(want, feedOf(t, pool, inserted, skipInserted)); diff != "" {
		t.Errorf("events (-staged +inserted):\n%s", diff)
	}
	for _, tid := range []string{inserted, staged} {
		assertAwkwardCopy(t, st, tid, users)
	}

	// A user and a membership left from before (in no page): the staged
	// path writes the pages and sweeps them. A remembered soft delete of a
	// page's user: the staged path restores it.
	notEmpty, skip := tenant()
	stale := uuid.NewString()
	exec(`INSERT INTO directory_users (tenant_id, id, user_principal_name) VALUES ($1, $2, 'stale@x.example')`, notEmpty, stale)
	// (Not the stale user's: the users page's sweep would take it along.)
	exec(`INSERT INTO group_members (tenant_id, group_id, member_id) VALUES ($1, $2, $3)`, notEmpty, uuid.NewString(), uuid.NewString())
	apply(notEmpty, 1)
	if got := batchForms(t, pool, notEmpty); got["user.created"] != "sql" || got["group.created"] != "sql" {
		t.Errorf("pages of a copy with rows were inserted: %v", got)
	}
	var swept []string
	for _, e := range feedOf(t, pool, notEmpty, skip) {
		if !strings.HasSuffix(strings.Fields(e)[0], "created") && !strings.HasSuffix(strings.Fields(e)[0], "added") {
			swept = append(swept, strings.Fields(e)[0])
		}
	}
	if diff := cmp.Diff([]string{"group.member_removed", "user.removed"}, swept); diff != "" {
		t.Errorf("events of the rows from before (-want +got):\n%s", diff)
	}

	buried, skip := tenant()
	exec(`INSERT INTO directory_user_tombstones (tenant_id, id, data) VALUES ($1, $2, '{}')`, buried, users[0].ID)
	apply(buried, 1)
	var types []string
	for _, e := range feedOf(t, pool, buried, skip) {
		types = append(types, strings.Fields(e)[0])
	}
	if diff := cmp.Diff([]string{"group.created", "group.created", "group.member_added", "group.member_added",
		"user.created", "user.restored"}, types); diff != "" {
		t.Errorf("events of a first round over a remembered soft delete (-want +got):\n%s", diff)
	}
	if got := batchForms(t, pool, buried); got["user.created"] != "sql" || got["group.created"] != "go" {
		t.Errorf("users should be staged, groups inserted: %v", got)
	}
}
