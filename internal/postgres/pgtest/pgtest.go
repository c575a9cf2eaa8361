// Package pgtest gives each test its own freshly migrated Postgres database,
// cloned from a template that is migrated once per migration set (pgtestdb).
//
// The server comes from TEST_DATABASE_URL when set, else from a
// testcontainers-go Postgres container when Docker answers. Without either the
// test is skipped with a message saying how to provide Postgres, except under
// CI=true, where it fails: a green run must not hide skipped tests.
package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for pgtestdb
	"github.com/peterldowns/pgtestdb"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/migrations"
)

// Pool returns a pool on a fresh, fully migrated database that is dropped
// when the test passes (and kept for inspection when it fails).
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// URL returns the connection string of a fresh, fully migrated database.
func URL(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, Server(t), migrator{}).URL()
}

// Empty returns the connection string of a fresh database with no schema,
// for tests of the migrations themselves.
func Empty(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, Server(t), pgtestdb.NoopMigrator{}).URL()
}

var (
	serverOnce sync.Once
	serverConf pgtestdb.Config
	serverErr  error
)

// Server returns the Postgres server the tests use; see the package doc.
func Server(t testing.TB) pgtestdb.Config {
	t.Helper()
	serverOnce.Do(func() { serverConf, serverErr = findServer() })
	if serverErr != nil {
		msg := fmt.Sprintf("pgtest: no Postgres for this test: %v. Set TEST_DATABASE_URL "+
			"(e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), or run Docker for testcontainers, or use `make test`", serverErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return serverConf
}

func findServer() (pgtestdb.Config, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return configFromURL(u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("TEST_DATABASE_URL unset and no Docker: %w", err)
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		return pgtestdb.Config{}, fmt.Errorf("TEST_DATABASE_URL unset and Docker unhealthy: %w", err)
	}
	// The container lives as long as the test binary; Ryuk reaps it after.
	ctr, err := tcpostgres.Run(ctx, "postgres:17-alpine",
		tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithCmdArgs("-c", "fsync=off", "-c", "max_connections=500"))
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("start postgres container: %w", err)
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("postgres container: %w", err)
	}
	return configFromURL(u)
}

func configFromURL(raw string) (pgtestdb.Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return pgtestdb.Config{}, fmt.Errorf("TEST_DATABASE_URL is not a postgres:// URL")
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	return pgtestdb.Config{
		DriverName: "pgx",
		Host:       u.Hostname(),
		Port:       port,
		User:       u.User.Username(),
		Password:   pw,
		Database:   strings.TrimPrefix(u.Path, "/"),
		Options:    q.Encode(),
		// Pools in tests (River clients, servers) may still hold a
		// connection when the test ends.
		ForceTerminateConnections: true,
	}, nil
}

// migrator builds pgtestdb templates with tenantsync's own goose migrations.
type migrator struct{}

// Hash identifies the migration set, so a changed migration gets a new template.
func (migrator) Hash() (string, error) {
	h := sha256.New()
	var names []string
	if err := fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	}); err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Migrate applies every migration to the template database.
func (migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	m, err := postgres.NewMigratorDB(db, nil)
	if err != nil {
		return err
	}
	// db belongs to pgtestdb; do not Close the migrator.
	_, err = m.Up(ctx)
	return err
}

// SeedTenants inserts n tenants with varied names, statuses, sync times,
// failures and sizes, including ties and never-synced tenants, in one SQL
// statement so that benchmarks at 100,000 tenants stay quick, then vacuums
// and analyzes as autovacuum would have.
func SeedTenants(tb testing.TB, pool *pgxpool.Pool, n int) {
	tb.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
INSERT INTO tenants (id, status, display_name, domains, last_synced_at, failure_count, user_count, created_at)
SELECT
	md5('tenant' || i)::uuid,
	(ARRAY['pending','active','failing','consent_revoked','insufficient_permissions','disconnected'])[1 + i % 6],
	CASE WHEN i % 7 = 0 THEN 'Contoso ' ELSE 'Fabrikam ' END || (i % 1000),
	ARRAY['t' || i || '.example', 't' || i || '.onmicrosoft.com'],
	CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '2026-11-01' + (i % 997) * interval '1 minute' END,
	i % 4,
	(i * 37) % 5000,
	timestamptz '2026-01-01' + (i % 5003) * interval '1 second'
FROM generate_series(1, $1) AS i`, n)
	if err != nil {
		tb.Fatalf("pgtest: seed tenants: %v", err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE tenants, tenant_search"); err != nil {
		tb.Fatalf("pgtest: vacuum: %v", err)
	}
}

// ActiveTenant stores tid as a tenant whose admin consented and whose
// consent was verified: active, with no sync yet, so due at once.
func ActiveTenant(t testing.TB, store *postgres.Store, tid string) {
	t.Helper()
	ctx := context.Background()
	if _, err := store.TenantUpsertConsented(ctx, tid, "admin@"+tid+".example", "oid-"+tid); err != nil {
		t.Fatalf("pgtest: consent of tenant %s: %v", tid, err)
	}
	if err := store.TenantSetStatus(ctx, tid, domain.TenantActive, "consent verified", "test"); err != nil {
		t.Fatalf("pgtest: activate tenant %s: %v", tid, err)
	}
}

// Events returns every committed change-feed event of tenant tid (every
// tenant for ""), in feed order. It reads the table itself, without
// EventsAfter's hold-back (docs/events.md), so a test that has finished its
// writes sees them at once even while other tests' transactions run.
func Events(tb testing.TB, db interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, tid string) []domain.Event {
	tb.Helper()
	rows, err := db.Query(context.Background(), `SELECT xid::text, seq, id::text, tenant_id::text, type, occurred_at, data
		FROM change_feed WHERE $1 = '' OR tenant_id::text = $1 ORDER BY xid, seq`, tid)
	if err != nil {
		tb.Fatalf("pgtest: events: %v", err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Event, error) {
		var ev domain.Event
		var xid string
		err := row.Scan(&xid, &ev.Pos.Seq, &ev.ID, &ev.TenantID, &ev.Type, &ev.OccurredAt, &ev.Data)
		if err == nil {
			ev.Pos.Xid, err = strconv.ParseUint(xid, 10, 64)
		}
		return ev, err
	})
	if err != nil {
		tb.Fatalf("pgtest: events: %v", err)
	}
	return evs
}
