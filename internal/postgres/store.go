package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// DB is what both a pool and a transaction offer.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Store runs tenantsync's queries on a pool or, inside Tx, on a transaction.
type Store struct {
	db  DB
	now func() time.Time
	// noEvents leaves directory changes out of the change feed; see
	// WithoutDirectoryEvents.
	noEvents bool
}

// New returns a store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{db: pool, now: time.Now} }

// WithClock returns a copy of s that reads time from now.
func (s *Store) WithClock(now func() time.Time) *Store { c := *s; c.now = now; return &c }

// WithoutDirectoryEvents returns a copy of s whose directory writes add no
// change-feed events (tenant lifecycle events are still written). It exists
// so a benchmark can measure what the feed costs the sync in the same run
// (docs/events.md); the feed of a store built this way misses changes, so
// no process uses one.
func (s *Store) WithoutDirectoryEvents() *Store { c := *s; c.noEvents = true; return &c }

// Tx runs fn in one transaction: committed when fn returns nil, rolled back
// otherwise. fn gets the raw transaction (for River's InsertTx) and a store
// bound to it.
func (s *Store) Tx(ctx context.Context, fn func(tx pgx.Tx, st *Store) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	st := *s
	st.db = tx
	if err := fn(tx, &st); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// relaxCommit, queued last in a batch (an implicit transaction), lets that
// transaction commit without waiting for its WAL to reach disk
// (synchronous_commit is read at commit time; set_config's true scopes it
// to the transaction, so the connection keeps the server's setting). The
// worker queues it only on commits that write no change-feed event: a
// sync's start, a page that changes no row, a run's record, a round's end.
// A Postgres crash may lose the last few hundred milliseconds of such
// commits, and losing them is harmless: the lease lapses, the checkpoint
// is an older deltaLink from which the next round fetches the same
// changes, a run is missing from the history, a tenant is due again
// sooner. A commit that writes events keeps the server's setting, so a
// reader never sees an event that a crash then takes back (docs/events.md).
// Measured with make bench-fleet (3,000 tenants × 50 users): with every
// commit asynchronous, a steady round ran at 1.2–1.3× the tenants/s of
// synchronous commits (663 and 699 against 543).
const relaxCommit = `SELECT set_config('synchronous_commit', 'off', true)`

// relax queues relaxCommit on b, which the caller sends as its own implicit
// transaction; on a store bound to a transaction it queues nothing, as the
// setting would hold for the whole transaction, whatever else it writes.
func (s *Store) relax(b *pgx.Batch) {
	if _, inTx := s.db.(pgx.Tx); !inTx {
		b.Queue(relaxCommit)
	}
}

// Unavailable says whether err is Postgres going away under a statement —
// a restart or failover ends every connection with FATAL admin_shutdown
// (57P01) or crash_shutdown (57P02), a server starting up refuses with
// cannot_connect_now (57P03), a broken link is a connection exception
// (class 08), a server not there refuses to connect, and a server killed
// outright just drops the connection (pgx then reports the socket's error
// or end, and "conn closed" for its next use) — rather than a statement
// refused for what it is. Such work is worth running again as it was; it
// says nothing about the tenant it was for.
// (https://www.postgresql.org/docs/current/errcodes-appendix.html)
func Unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	// pgconn's own errors (their type is not exported) say whether they are
	// safe to retry; among them, a socket's failure or end is the server
	// gone. A Graph request's network error carries no such method.
	var fromPgconn interface{ SafeToRetry() bool }
	var netErr net.Error
	return errors.As(err, &fromPgconn) &&
		(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr))
}

// notFound turns pgx.ErrNoRows into domain.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

// Open connects a pool and checks the database answers. maxConns sizes the
// pool unless url sets pool_max_conns itself; 0 keeps pgx's default.
func Open(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return nil, errors.New("DATABASE_URL is not a valid Postgres connection string")
	}
	if maxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

func (s *Store) countBy(ctx context.Context, sql string, out map[string]float64) error {
	rows, err := s.db.Query(ctx, sql)
	if err != nil {
		return err
	}
	var (
		k string
		n int64
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &n}, func() error { out[k] = float64(n); return nil })
	return err
}
