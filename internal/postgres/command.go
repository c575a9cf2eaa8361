package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrateCommand is the `migrate` subcommand of server and worker: it applies
// every pending migration and says how many ran.
func MigrateCommand(ctx context.Context, databaseURL string, logger *slog.Logger, out io.Writer) error {
	pool, err := Open(ctx, databaseURL, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := Migrate(ctx, pool, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "migrations applied: %d; schema is current\n", n)
	return nil
}

// OpenCurrent connects and refuses a database whose schema is behind, naming
// the fix.
//
// maxConns sizes the pool when DATABASE_URL does not (pool_max_conns); 0
// keeps pgx's default.
func OpenCurrent(ctx context.Context, databaseURL, binary string, maxConns int) (*pgxpool.Pool, error) {
	pool, err := Open(ctx, databaseURL, maxConns)
	if err != nil {
		return nil, err
	}
	if err := CheckSchema(ctx, pool); err != nil {
		pool.Close()
		if errors.Is(err, ErrSchemaBehind) {
			return nil, fmt.Errorf("database schema is behind this %s; run `%s migrate` (or `make migrate`) first", binary, binary)
		}
		return nil, err
	}
	return pool, nil
}
