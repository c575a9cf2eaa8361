package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestUnavailable: a connection the server ended under it (what a restart
// does to every connection), one whose socket just went away (a server
// killed outright) and a server that is not there are Postgres being
// unavailable; a statement Postgres refuses, a cancelled context and
// other errors are not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, ended := conn.Exec(ctx, `SELECT 1`)
	// A connection whose socket goes away without a word (the server killed
	// outright), and its next use.
	cut, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close(ctx)
	if err := cut.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	_, dropped := cut.Exec(ctx, `SELECT 1`)
	_, closed := cut.Exec(ctx, `SELECT 1`)
	_, refused := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	tid := uuid.NewString()
	_, violation := pool.Exec(ctx, `INSERT INTO directory_users (tenant_id, id) VALUES ($1, gen_random_uuid())`, tid)
	_, dialed := net.Dial("tcp", "127.0.0.1:1") // a network error not from Postgres (a Graph request's)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, cancelled := pool.Exec(cctx, `SELECT 1`)
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"a connection the server ended", fmt.Errorf("apply users page: %w", ended), true},
		{"no server", refused, true},
		{"a dropped socket", dropped, true},
		{"a connection pgx closed after that", closed, true},
		{"a refused statement", violation, false},
		{"a cancelled context", cancelled, false},
		{"another error", errors.New("graph: connection reset by peer"), false},
		{"a network error of another client", fmt.Errorf("graph: %w", dialed), false},
	} {
		if c.err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if got := postgres.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%s: %v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
