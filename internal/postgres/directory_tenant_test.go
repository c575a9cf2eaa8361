package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestDirectoryTenantReference: the directory tables refer to their
// tenant as a foreign key did (migrations/00100_directory_tenant_check.sql):
// no row, inserted or COPYed, for a tenant that does not exist; no row
// moved to another tenant; a row being written keeps its tenant from being
// deleted until it commits; a deleted tenant's rows go with it.
func TestDirectoryTenantReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid, other, unknown := uuid.NewString(), uuid.NewString(), uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	pgtest.ActiveTenant(t, st, other)
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return ""
	}
	for _, q := range []string{
		`INSERT INTO directory_users (tenant_id, id) VALUES ($1, gen_random_uuid()), ($2, gen_random_uuid())`,
		`INSERT INTO directory_groups (tenant_id, id) VALUES ($1, gen_random_uuid()), ($2, gen_random_uuid())`,
		`INSERT INTO group_members (tenant_id, group_id, member_id) VALUES ($1, gen_random_uuid(), gen_random_uuid()),
			($2, gen_random_uuid(), gen_random_uuid())`,
	} {
		if _, err := pool.Exec(ctx, q, tid, unknown); code(err) != "23503" {
			t.Errorf("rows for a tenant that does not exist: %v, want a foreign key violation\n%s", err, q)
		}
		if _, err := pool.Exec(ctx, q, tid, other); err != nil {
			t.Fatal(err)
		}
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"directory_users"}, []string{"tenant_id", "id"},
		pgx.CopyFromRows([][]any{{tid, uuid.NewString()}, {unknown, uuid.NewString()}}))
	if code(err) != "23503" {
		t.Errorf("COPY of rows for a tenant that does not exist: %v, want a foreign key violation", err)
	}
	for _, table := range []string{"directory_users", "directory_groups", "group_members"} {
		if _, err := pool.Exec(ctx, `UPDATE `+table+` SET tenant_id = $2 WHERE tenant_id = $1`, tid, other); code(err) != "23503" {
			t.Errorf("moving rows of %s to another tenant: %v, want a foreign key violation", table, err)
		}
	}

	// A page being written holds its tenant.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO directory_users (tenant_id, id) VALUES ($1, gen_random_uuid())`, tid); err != nil {
		t.Fatal(err)
	}
	del, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer del.Rollback(ctx)
	if _, err := del.Exec(ctx, `SET LOCAL lock_timeout = '300ms'`); err != nil {
		t.Fatal(err)
	}
	if _, err := del.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, tid); code(err) != "55P03" {
		t.Errorf("deleting a tenant while its rows are written: %v, want a lock timeout", err)
	}
	if err := del.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"directory_users", "directory_groups", "group_members"} {
		var mine, others int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id = $2) FROM `+table,
			tid, other).Scan(&mine, &others); err != nil {
			t.Fatal(err)
		}
		if mine != 0 || others != 1 {
			t.Errorf("%s after deleting a tenant: %d of its rows, %d of another's; want 0 and 1", table, mine, others)
		}
	}
}
