package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestRunKeepsThrottleWindowsInTheDatabase: the worker's Graph client
// records a tenant's Retry-After in Postgres, where every worker process
// reads it (issue 11, defect 4).
func TestRunKeepsThrottleWindowsInTheDatabase(t *testing.T) {
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	tid := entraemu.ContosoTenantID
	srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 1, RetryAfter: time.Hour})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.New(pool)
	ctx := context.Background()
	pgtest.ActiveTenant(t, store, tid)
	env := map[string]string{
		"DATABASE_URL": dbURL, "ENTRA_AUTHORITY_HOST": srv.AuthorityHost, "GRAPH_BASE_URL": srv.GraphBaseURL,
		"ENTRA_CLIENT_ID": srv.DefaultApp().ClientID, "ENTRA_CLIENT_SECRET": srv.DefaultApp().Secrets[0].Value,
		"ENTRA_CA_FILE": ca, "WORKER_ADMIN_ADDR": freeAddr(t), "LOG_FORMAT": "text",
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(runCtx, nil, func(k string) string { return env[k] }, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// The worker syncs the due tenant at start; polled, never timed.
	var until time.Time
	for range 1200 {
		if until, err = store.TenantThrottledUntil(ctx, tid); err != nil {
			t.Fatal(err)
		}
		if !until.IsZero() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if until.Before(time.Now().Add(50 * time.Minute)) {
		t.Fatalf("tenant's throttle window ends at %v, want about an hour from now (Graph answered 429 with Retry-After: 3600)", until)
	}
	if n := srv.Counters(tid); n.Throttled != n.GraphRequests || n.EarlyRetries != 0 {
		t.Errorf("counters %+v: want every request throttled and none sent inside the window", n)
	}
}
