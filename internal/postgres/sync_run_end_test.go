package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestSyncRunEndHeld: pages held for the run's end commit with it (issue
// 13). A first round's only pages, inserted, write exactly the rows and
// events they write when applied one by one, and the run counts them; a
// steady round's empty pages move the checkpoints. A page the end cannot
// take (one that removes a user), a copy that is not empty after all (the
// inserted page's guard) and a lost lease write nothing at all.
func TestSyncRunEndHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	users, groups := awkwardPages()

	take := func(tid string) domain.SyncLease {
		t.Helper()
		lease := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}
		if taken, _, err := st.SyncLeaseTake(ctx, tid, lease); err != nil || !taken {
			t.Fatalf("lease: %v, %v", taken, err)
		}
		return lease
	}
	tenant := func() (string, domain.SyncLease, int) {
		tid := uuid.NewString()
		pgtest.ActiveTenant(t, st, tid)
		return tid, take(tid), len(pgtest.Events(t, pool, tid))
	}
	run := func(tid string) domain.SyncRun {
		return domain.SyncRun{TenantID: tid, Kind: domain.SyncFull, Outcome: domain.SyncSucceeded, StartedAt: time.Now(), Pages: 2}
	}
	end := func(lease domain.SyncLease) domain.SyncEnd {
		return domain.SyncEnd{Interval: time.Hour, LeaseOwner: lease.Owner}
	}
	// held are the two pages of a round of round; round 0 is a steady
	// delta round's (empty) pages.
	held := func(lease domain.SyncLease, u *domain.UsersPage, g *domain.GroupsPage, round int64) []domain.SyncPage {
		uc, gc := onlyPage("users", round), onlyPage("groups", round)
		if round == 0 {
			steady := func(resource string) domain.SyncCommit {
				return domain.SyncCommit{First: true, Checkpoint: domain.SyncCheckpoint{Resource: resource,
					Link: "delta2", LinkKind: domain.LinkDelta, Round: 1, RoundKind: domain.SyncDelta}}
			}
			uc, gc = steady("users"), steady("groups")
		}
		uc.Lease, gc.Lease = lease, lease
		return []domain.SyncPage{{Users: u, Commit: uc}, {Groups: g, Commit: gc}}
	}
	// state is what a refused end must leave as it was.
	type state struct {
		Runs, Checkpoints, Users, Events int
		Owner                            string
	}
	stateOf := func(tid string) state {
		t.Helper()
		var s state
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_runs WHERE tenant_id = $1),
			(SELECT count(*) FROM sync_state WHERE tenant_id = $1), (SELECT count(*) FROM directory_users WHERE tenant_id = $1),
			(SELECT coalesce(sync_lease_owner::text, '') FROM tenants WHERE id = $1)`, tid).Scan(&s.Runs, &s.Checkpoints, &s.Users, &s.Owner); err != nil {
			t.Fatal(err)
		}
		s.Events = len(pgtest.Events(t, pool, tid))
		return s
	}
	links := func(tid string) map[string]string {
		t.Helper()
		cps, err := st.SyncStateList(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, cp := range cps {
			m[cp.Resource] = cp.Link
		}
		return m
	}

	// The first round, held, against the same pages applied one by one.
	tid, lease, skip := tenant()
	id, applied, err := st.SyncRunEnd(ctx, run(tid), end(lease), held(lease, &domain.UsersPage{Users: users}, groups, 1))
	if err != nil || id == 0 || applied != (domain.SyncApplied{Upserts: 6}) {
		t.Fatalf("SyncRunEnd with the first round's pages: %d, %+v, %v; want 6 upserts", id, applied, err)
	}
	apart, apartLease, apartSkip := tenant()
	if _, err := st.DirectoryUsersApply(ctx, apart, &domain.UsersPage{Users: users}, onlyPage("users", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DirectoryGroupsApply(ctx, apart, groups, onlyPage("groups", 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SyncRunEnd(ctx, run(apart), end(apartLease), nil); err != nil {
		t.Fatal(err)
	}
	want := feedOf(t, pool, apart, apartSkip)
	if len(want) != 6 {
		t.Fatalf("pages applied one by one wrote %d events, want 6: %v", len(want), want)
	}
	if diff := cmp.Diff(want, feedOf(t, pool, tid, skip)); diff != "" {
		t.Errorf("events (-one by one +held):\n%s", diff)
	}
	assertAwkwardCopy(t, st, tid, users)
	var upserts, pages int
	if err := pool.QueryRow(ctx, `SELECT upserts, pages FROM sync_runs WHERE id = $1`, id).Scan(&upserts, &pages); err != nil {
		t.Fatal(err)
	}
	if upserts != 6 || pages != 2 {
		t.Errorf("run recorded %d upserts and %d pages, want 6 and 2", upserts, pages)
	}
	if diff := cmp.Diff(map[string]string{"users": "delta", "groups": "delta"}, links(tid)); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	if s := stateOf(tid); s.Owner != "" {
		t.Errorf("the lease is still held by %s after the round's end", s.Owner)
	}

	// A steady round: empty pages move the checkpoints, write no row.
	lease = take(tid)
	before := stateOf(tid)
	if _, applied, err = st.SyncRunEnd(ctx, run(tid), end(lease), held(lease, &domain.UsersPage{}, &domain.GroupsPage{}, 0)); err != nil || applied != (domain.SyncApplied{}) {
		t.Fatalf("SyncRunEnd with a steady round's pages: %+v, %v", applied, err)
	}
	if diff := cmp.Diff(map[string]string{"users": "delta2", "groups": "delta2"}, links(tid)); diff != "" {
		t.Errorf("checkpoints after the steady round (-want +got):\n%s", diff)
	}
	after := stateOf(tid)
	if after.Events != before.Events || after.Users != before.Users || after.Runs != before.Runs+1 {
		t.Errorf("a steady round went from %+v to %+v; want one more run, nothing else", before, after)
	}

	// Refused: nothing written, the lease still held.
	for _, tc := range []struct {
		name    string
		prepare func(tid string)
		removes bool
		lost    bool
		want    error
	}{
		{name: "a copy not empty after all", want: domain.ErrHeldPagesRefused, prepare: func(tid string) {
			if _, err := pool.Exec(ctx, `INSERT INTO directory_users (tenant_id, id) VALUES ($1, $2)`, tid, uuid.NewString()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a page that removes a user", removes: true, want: domain.ErrHeldPagesRefused},
		{name: "a lost lease", lost: true, want: domain.ErrSyncLeaseLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tid, lease, _ := tenant()
			if tc.prepare != nil {
				tc.prepare(tid)
			}
			page := &domain.UsersPage{Users: users}
			if tc.removes {
				page.Removed = []string{uuid.NewString()}
			}
			commits := lease
			if tc.lost {
				commits.Owner = uuid.NewString()
			}
			before := stateOf(tid)
			_, applied, err := st.SyncRunEnd(ctx, run(tid), end(lease), held(commits, page, groups, 1))
			if !errors.Is(err, tc.want) || applied != (domain.SyncApplied{}) {
				t.Fatalf("SyncRunEnd: %+v, %v; want %v", applied, err, tc.want)
			}
			if after := stateOf(tid); after != before {
				t.Errorf("a refused end changed %+v into %+v", before, after)
			}
		})
	}
}
