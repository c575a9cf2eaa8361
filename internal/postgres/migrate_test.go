package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func emptyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.Empty(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrated is a database of its own with every migration applied, and
// its migrator, for tests that migrate down and up again.
func migrated(t *testing.T) (*pgxpool.Pool, *postgres.Migrator) {
	t.Helper()
	pool := emptyPool(t)
	m, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pool, m
}

func tables(t *testing.T, pool *pgxpool.Pool) map[string]bool {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[n] = true
	}
	return out
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	m, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if err := m.Check(ctx); !errors.Is(err, postgres.ErrSchemaBehind) {
		t.Fatalf("Check on an empty database = %v, want ErrSchemaBehind", err)
	}
	n, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(m.Versions()) {
		t.Errorf("applied %d migrations, want %d", n, len(m.Versions()))
	}
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check after Up: %v", err)
	}
	got := tables(t, pool)
	for _, want := range []string{"tenants", "tenant_events", "river_job", "river_leader", "river_queue"} {
		if !got[want] {
			t.Errorf("table %s missing after up; have %v", want, got)
		}
	}

	if err := m.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for name := range tables(t, pool) {
		if name != "goose_db_version" {
			t.Errorf("table %s left after down to 0", name)
		}
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("second up: %v", err)
	}
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check after second Up: %v", err)
	}
}

// Concurrent starts of several processes must serialize on the session lock,
// not fail on each other's half-applied schema.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	counts := make([]int, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = postgres.Migrate(ctx, pool, nil)
		}()
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
		total += counts[i]
	}
	m, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if total != len(m.Versions()) {
		t.Errorf("migrations applied %d times in all, want each once (%d)", total, len(m.Versions()))
	}
	if err := postgres.CheckSchema(ctx, pool); err != nil {
		t.Fatal(err)
	}
}
