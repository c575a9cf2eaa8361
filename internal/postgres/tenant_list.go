package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TenantSort orders the operator's tenant list.
type TenantSort string

// Tenant list orders; each is backed by an index on (key, id).
const (
	SortCreated  TenantSort = "created"   // newest first
	SortName     TenantSort = "name"      // A → Z
	SortLastSync TenantSort = "last_sync" // least recently synced first (never synced on top)
	SortFailures TenantSort = "failures"  // most failures first
	SortSize     TenantSort = "size"      // most users first
)

// TenantSorts lists the valid orders.
var TenantSorts = []TenantSort{SortCreated, SortName, SortLastSync, SortFailures, SortSize}

// sortSpec is how one order maps to SQL: the key expression (as indexed),
// its direction, and how a cursor's key value is typed.
type sortSpec struct {
	key  string
	desc bool
	cast string
}

var tenantSortSpecs = map[TenantSort]sortSpec{
	SortCreated:  {key: "created_at", desc: true, cast: "timestamptz"},
	SortName:     {key: "lower(display_name)", cast: "text"},
	SortLastSync: {key: "coalesce(last_synced_at, '-infinity'::timestamptz)", cast: "timestamptz"},
	SortFailures: {key: "failure_count", desc: true, cast: "integer"},
	SortSize:     {key: "user_count", desc: true, cast: "integer"},
}

// TenantFilter selects and orders a page of tenants.
type TenantFilter struct {
	// Query matches a tenant ID exactly, a verified domain exactly (case-
	// insensitive), or part of the display name.
	Query  string
	Status domain.TenantStatus // "" = any
	Sort   TenantSort          // "" = SortCreated
	Limit  int                 // 1–500; 0 = 50
	After  *TenantCursor       // nil = first page
}

// TenantCursor is the position after the last tenant of a page: its sort key
// (as text) and ID. The web layer makes it opaque and tamper-evident.
type TenantCursor struct {
	Sort TenantSort `json:"s"`
	Key  string     `json:"k"`
	ID   string     `json:"i"`
}

// TenantPage is one page of tenants and the cursor of the next, if any.
type TenantPage struct {
	Tenants []domain.Tenant
	Next    *TenantCursor
}

// TenantList returns one page of tenants by keyset pagination: the cost of a
// page does not grow with its position.
func (s *Store) TenantList(ctx context.Context, f TenantFilter) (TenantPage, error) {
	if f.Sort == "" {
		f.Sort = SortCreated
	}
	spec, ok := tenantSortSpecs[f.Sort]
	if !ok {
		return TenantPage{}, domain.Invalidf("unknown sort %q", f.Sort)
	}
	if f.Status != "" && !f.Status.Valid() {
		return TenantPage{}, domain.Invalidf("unknown status %q", f.Status)
	}
	switch {
	case f.Limit == 0:
		f.Limit = 50
	case f.Limit < 1 || f.Limit > 500:
		return TenantPage{}, domain.Invalidf("limit must be between 1 and 500")
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	from := "tenants"
	if q := strings.TrimSpace(f.Query); q != "" {
		// Names and domains are searched in tenant_search (its GIN indexes
		// stay off the tenants write path; migration 00061).
		match := "SELECT tenant_id FROM tenant_search WHERE domains @> ARRAY[" + arg(strings.ToLower(q)) + "]::text[]" +
			" OR display_name ILIKE " + arg("%"+escapeLike(q)+"%")
		if domain.IsGUID(q) {
			match += " UNION SELECT " + arg(strings.ToLower(q)) + "::uuid"
		}
		// Matches come from the GIN indexes first; ordering them is cheap.
		// Left to itself the planner walks the sort index and filters every
		// row (200 ms at 100,000 tenants, measured).
		from = "(WITH m AS MATERIALIZED (SELECT * FROM tenants WHERE id IN (" + match + ")) SELECT * FROM m) AS tenants"
	}
	dir, cmp := "ASC", ">"
	if spec.desc {
		dir, cmp = "DESC", "<"
	}
	if f.After != nil {
		if f.After.Sort != f.Sort || !domain.IsGUID(f.After.ID) {
			return TenantPage{}, domain.Invalidf("the cursor belongs to another listing")
		}
		if err := checkCursorKey(spec.cast, f.After.Key); err != nil {
			return TenantPage{}, err
		}
		where = append(where, fmt.Sprintf("(%s, tenants.id) %s (%s::%s, %s::uuid)", spec.key, cmp, arg(f.After.Key), spec.cast, arg(f.After.ID)))
	}
	sql := "SELECT " + tenantColumns + ", (" + spec.key + ")::text AS sort_key FROM " + from
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	// tenants.id, not id: the select list's id::text is also named id, and
	// ORDER BY would take that, sorting text that no index covers (42 ms for
	// a first page at 100,000 tenants instead of under 1 ms).
	sql += fmt.Sprintf(" ORDER BY %s %s, tenants.id %s LIMIT %d", spec.key, dir, dir, f.Limit+1)

	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return TenantPage{}, fmt.Errorf("list tenants: %w", err)
	}
	type row struct {
		domain.Tenant
		SortKey string
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var out row
		t := &out.Tenant
		err := r.Scan(&t.ID, &t.Status, &t.StatusReason, &t.StatusChangedAt, &t.DisplayName, &t.Domains,
			&t.ConsentedAt, &t.ConsentedBy, &t.ConsentedByOID, &t.GrantedRoles, &t.LastSyncedAt, &t.NextSyncAt,
			&t.FailureCount, &t.SyncSuspended, &t.CreatedAt, &t.UpdatedAt, &t.UserCount, &t.GroupCount, &out.SortKey)
		return out, err
	})
	if err != nil {
		return TenantPage{}, fmt.Errorf("list tenants: %w", err)
	}
	var page TenantPage
	for i, r := range list {
		if i == f.Limit {
			last := list[i-1]
			page.Next = &TenantCursor{Sort: f.Sort, Key: last.SortKey, ID: last.ID}
			break
		}
		page.Tenants = append(page.Tenants, r.Tenant)
	}
	return page, nil
}

// checkCursorKey refuses a key that would not cast, so a tampered cursor is
// the caller's error, not a database error.
func checkCursorKey(cast, key string) error {
	switch cast {
	case "integer":
		var n int
		if _, err := fmt.Sscanf(key, "%d", &n); err != nil || fmt.Sprint(n) != key {
			return domain.Invalidf("malformed cursor")
		}
	case "timestamptz":
		if key == "-infinity" {
			return nil
		}
		_, err1 := time.Parse("2006-01-02 15:04:05.999999-07", key)
		_, err2 := time.Parse("2006-01-02 15:04:05.999999-07:00", key)
		if err1 != nil && err2 != nil {
			return domain.Invalidf("malformed cursor")
		}
	}
	return nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
