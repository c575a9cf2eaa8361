package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tenantsync/tenantsync/migrations"
)

// ErrSchemaBehind means the database lacks migrations this binary needs.
var ErrSchemaBehind = errors.New("database schema is behind this version; run `server migrate` (or `make migrate`) first")

// Migrator applies the embedded migrations.
type Migrator struct {
	provider *goose.Provider
	db       *sql.DB
}

// NewMigrator opens a goose provider over pool. A Postgres session advisory
// lock makes concurrent migrations from several processes wait for each other.
// Close releases its connection.
func NewMigrator(pool *pgxpool.Pool, logger *slog.Logger) (*Migrator, error) {
	return NewMigratorDB(stdlib.OpenDBFromPool(pool), logger)
}

// NewMigratorDB is NewMigrator over a database/sql handle, which Close closes.
func NewMigratorDB(db *sql.DB, logger *slog.Logger) (*Migrator, error) {
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockTimeout(1, 600), // poll every 1 s for up to 10 min
	)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(locker),
		// River's generated files (00101+) and the application's (00001–00100, then 01001+)
		// are two series that each grow; both must apply whatever their order.
		goose.WithAllowOutofOrder(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{provider: p, db: db}, nil
}

// Up applies every pending migration and returns how many ran.
func (m *Migrator) Up(ctx context.Context) (int, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate up: %w", err)
	}
	return len(res), nil
}

// DownTo rolls back to version (0 = everything).
func (m *Migrator) DownTo(ctx context.Context, version int64) error {
	if _, err := m.provider.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate down to %d: %w", version, err)
	}
	return nil
}

// Check returns ErrSchemaBehind when any migration is not applied.
func (m *Migrator) Check(ctx context.Context) error {
	pending, err := m.provider.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	if pending {
		return ErrSchemaBehind
	}
	return nil
}

// Versions lists every migration version known to this binary.
func (m *Migrator) Versions() []int64 {
	var out []int64
	for _, s := range m.provider.ListSources() {
		out = append(out, s.Version)
	}
	return out
}

// Close releases the migrator's database handle.
func (m *Migrator) Close() error { return m.db.Close() }

// Migrate applies every pending migration on pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (int, error) {
	m, err := NewMigrator(pool, logger)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	return m.Up(ctx)
}

// CheckSchema returns ErrSchemaBehind when pool's database needs migrations.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := NewMigrator(pool, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Check(ctx)
}
