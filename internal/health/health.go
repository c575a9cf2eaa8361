// Package health is what the server and the worker share for container and
// load-balancer health checks: Probe, the client behind their `healthcheck`
// subcommands, and Checker, the readiness test behind both processes'
// /readyz (the database answers and its schema is current).
package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/postgres"
)

const (
	// probeTimeout bounds a whole Probe.
	probeTimeout = 5 * time.Second
	// checkTimeout bounds a whole Check: a probe must not hang on the database.
	checkTimeout = 3 * time.Second
)

// Probe GETs http://127.0.0.1:{port}/healthz and fails unless it answers 200
// within 5 s. The port is that of addr, the listen address configured in the
// environment variable named variable (defaultAddr when addr is empty); its
// host is ignored, since the probe runs in the same container as the process.
func Probe(ctx context.Context, variable, addr, defaultAddr string) error {
	if addr == "" {
		addr = defaultAddr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("%s %q has no port", variable, addr)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %s", res.Status)
	}
	return nil
}

// Checker tells whether a process is ready: its database answers and has
// every migration this binary needs. Build it once and ask it on every probe.
type Checker struct {
	pool   *pgxpool.Pool
	schema *postgres.Migrator
}

// NewChecker builds a Checker over pool. Close releases it, not the pool.
func NewChecker(pool *pgxpool.Pool) (*Checker, error) {
	schema, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		return nil, err
	}
	return &Checker{pool: pool, schema: schema}, nil
}

// Check returns nil when the database answers and its schema is current,
// postgres.ErrSchemaBehind when migrations are pending, or another error,
// all within 3 s.
func (c *Checker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := c.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return c.schema.Check(ctx)
}

// Close releases the Checker's database handle; the pool stays open.
func (c *Checker) Close() error { return c.schema.Close() }
