package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// walk reads every page and returns the IDs in order.
func walk(t *testing.T, st *postgres.Store, f postgres.TenantFilter) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		p, err := st.TenantList(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range p.Tenants {
			ids = append(ids, tn.ID)
		}
		if p.Next == nil {
			return ids
		}
		if len(p.Tenants) != f.Limit {
			t.Fatalf("page of %d before the last, want %d", len(p.Tenants), f.Limit)
		}
		f.After = p.Next
	}
}

func TestTenantListPagination(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	pgtest.SeedTenants(t, pool, 300)
	all, err := st.TenantList(context.Background(), postgres.TenantFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Tenants) != 300 || all.Next != nil {
		t.Fatalf("one big page: %d tenants, next %v", len(all.Tenants), all.Next)
	}
	never := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	less := map[postgres.TenantSort]func(a, b domain.Tenant) bool{
		postgres.SortCreated: func(a, b domain.Tenant) bool {
			return a.CreatedAt.After(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID > b.ID
		},
		postgres.SortName: func(a, b domain.Tenant) bool {
			an, bn := strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)
			return an < bn || an == bn && a.ID < b.ID
		},
		postgres.SortLastSync: func(a, b domain.Tenant) bool {
			at, bt := never, never
			if a.LastSyncedAt != nil {
				at = *a.LastSyncedAt
			}
			if b.LastSyncedAt != nil {
				bt = *b.LastSyncedAt
			}
			return at.Before(bt) || at.Equal(bt) && a.ID < b.ID
		},
		postgres.SortFailures: func(a, b domain.Tenant) bool {
			return a.FailureCount > b.FailureCount || a.FailureCount == b.FailureCount && a.ID > b.ID
		},
		postgres.SortSize: func(a, b domain.Tenant) bool {
			return a.UserCount > b.UserCount || a.UserCount == b.UserCount && a.ID > b.ID
		},
	}
	for _, s := range postgres.TenantSorts {
		for _, status := range []domain.TenantStatus{"", domain.TenantActive} {
			t.Run(fmt.Sprintf("%s/%s", s, status), func(t *testing.T) {
				var want []string
				ts := append([]domain.Tenant(nil), all.Tenants...)
				sort.SliceStable(ts, func(i, j int) bool { return less[s](ts[i], ts[j]) })
				for _, tn := range ts {
					if status == "" || tn.Status == status {
						want = append(want, tn.ID)
					}
				}
				got := walk(t, st, postgres.TenantFilter{Sort: s, Status: status, Limit: 7})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("order (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestTenantListSearch(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	pgtest.SeedTenants(t, pool, 100)
	ctx := context.Background()
	byDomain, err := st.TenantList(ctx, postgres.TenantFilter{Query: "T42.Example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byDomain.Tenants) != 1 || byDomain.Tenants[0].Domains[0] != "t42.example" {
		t.Errorf("by domain: %+v", byDomain.Tenants)
	}
	id := byDomain.Tenants[0].ID
	byID, err := st.TenantList(ctx, postgres.TenantFilter{Query: strings.ToUpper(id)})
	if err != nil || len(byID.Tenants) != 1 || byID.Tenants[0].ID != id {
		t.Errorf("by id: %+v, %v", byID.Tenants, err)
	}
	byName, err := st.TenantList(ctx, postgres.TenantFilter{Query: "contoso", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(byName.Tenants) != 14 { // i % 7 == 0 for i in 1..100
		t.Errorf("by name: %d tenants, want 14", len(byName.Tenants))
	}
	none, err := st.TenantList(ctx, postgres.TenantFilter{Query: "%_"})
	if err != nil || len(none.Tenants) != 0 {
		t.Errorf("LIKE metacharacters must match literally: %d, %v", len(none.Tenants), err)
	}
}

func TestTenantListRefusesBadInput(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	pgtest.SeedTenants(t, pool, 10)
	ctx := context.Background()
	id := "0b3e8d2c-1111-2222-3333-444455556666"
	for name, f := range map[string]postgres.TenantFilter{
		"sort":            {Sort: "random"},
		"status":          {Status: "happy"},
		"limit":           {Limit: 501},
		"cursor of other": {Sort: postgres.SortName, After: &postgres.TenantCursor{Sort: postgres.SortSize, Key: "1", ID: id}},
		"cursor id":       {Sort: postgres.SortSize, After: &postgres.TenantCursor{Sort: postgres.SortSize, Key: "1", ID: "x"}},
		"cursor int key":  {Sort: postgres.SortSize, After: &postgres.TenantCursor{Sort: postgres.SortSize, Key: "1; DROP TABLE tenants", ID: id}},
		"cursor time key": {Sort: postgres.SortCreated, After: &postgres.TenantCursor{Sort: postgres.SortCreated, Key: "yesterday", ID: id}},
	} {
		if _, err := st.TenantList(ctx, f); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestDirectoryListPagination(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	ctx := context.Background()
	pgtest.SeedTenants(t, pool, 2)
	var tids []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(id::text ORDER BY id) FROM tenants`).Scan(&tids); err != nil {
		t.Fatal(err)
	}
	for i, tid := range tids {
		if _, err := pool.Exec(ctx, `INSERT INTO directory_users (tenant_id, id, display_name)
			SELECT $1::uuid, md5($1::text || i)::uuid, 'User ' || i FROM generate_series(1, $2) i`, tid, 25+i*10); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	p := postgres.DirectoryPage{Limit: 10}
	for {
		users, more, err := st.DirectoryUserList(ctx, tids[0], p)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if u.TenantID != tids[0] {
				t.Fatalf("user of another tenant: %+v", u)
			}
			got = append(got, u.ID)
		}
		if !more {
			break
		}
		p.After = users[len(users)-1].ID
	}
	if len(got) != 25 || !sort.StringsAreSorted(got) {
		t.Errorf("walked %d users (sorted %v), want 25", len(got), sort.StringsAreSorted(got))
	}
	if _, _, err := st.DirectoryUserList(ctx, tids[0], postgres.DirectoryPage{After: "nope"}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("bad cursor: %v", err)
	}
	groups, more, err := st.DirectoryGroupList(ctx, tids[0], postgres.DirectoryPage{})
	if err != nil || len(groups) != 0 || more {
		t.Errorf("groups of a tenant without any: %v %v %v", groups, more, err)
	}
}

// Search follows a tenant's new name and domains (tenant_search is kept by
// a trigger) and forgets the old ones.
func TestTenantListSearchFollowsChanges(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	pgtest.SeedTenants(t, pool, 10)
	ctx := context.Background()
	p, err := st.TenantList(ctx, postgres.TenantFilter{Query: "t3.example"})
	if err != nil || len(p.Tenants) != 1 {
		t.Fatalf("before: %v %v", p.Tenants, err)
	}
	id := p.Tenants[0].ID
	if _, err := pool.Exec(ctx, `UPDATE tenants SET display_name = 'Woodgrove Bank', domains = ARRAY['woodgrove.example'] WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"woodgrove.example": 1, "grove ban": 1, "t3.example": 0} {
		p, err := st.TenantList(ctx, postgres.TenantFilter{Query: q})
		if err != nil || len(p.Tenants) != want || (want == 1 && p.Tenants[0].ID != id) {
			t.Errorf("search %q: %d tenants (%v), want %d", q, len(p.Tenants), err, want)
		}
	}
	// A status change alone does not touch the search copy.
	var before, after int64
	if err := pool.QueryRow(ctx, `SELECT xmin::text::bigint FROM tenant_search WHERE tenant_id = $1`, id).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantSetStatus(ctx, id, domain.TenantPending, "test", "test"); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT xmin::text::bigint FROM tenant_search WHERE tenant_id = $1`, id).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Error("a status change rewrote the tenant's search row")
	}
}
