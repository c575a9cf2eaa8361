// Package jobstest is for tests that wire the worker's parts (the MSAL
// token source, the Graph client and the River worker client) to the
// emulator and a real Postgres. Only _test.go files import it.
package jobstest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs"
)

// Clients returns an MSAL token source for the emulator's default app and a
// Graph client on the emulator's Graph host using it, both over one HTTP
// client that trusts the emulator's CA. An empty secret means the app's
// first secret. The Graph client keeps no tenant throttle window; the
// worker's wiring is GatedClients.
func Clients(t testing.TB, emu *entraemu.Server, secret string) (*entra.TokenSource, *graph.Client) {
	t.Helper()
	return GatedClients(t, emu, secret, nil)
}

// GatedClients is Clients wired as cmd/worker wires them: the Graph client
// keeps each tenant's throttle window in gate (a *postgres.Store), shared
// with every other client on the same database.
func GatedClients(t testing.TB, emu *entraemu.Server, secret string, gate graph.Gate) (*entra.TokenSource, *graph.Client) {
	t.Helper()
	app := emu.DefaultApp()
	if secret == "" {
		secret = app.Secrets[0].Value
	}
	hc := emu.HTTPClient()
	tokens, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: emu.AuthorityHost, GraphBaseURL: emu.GraphBaseURL,
		ClientID: app.ClientID, Secret: secret, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Config{BaseURL: emu.GraphBaseURL, HTTPClient: hc, Tokens: tokens, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	return tokens, gc
}

// StartWorker starts the worker's River client on pool with deps and
// concurrency, fetching jobs every few milliseconds and discarding River's
// own log. t.Cleanup stops it, cancelling running jobs, within 10 seconds.
func StartWorker(t testing.TB, pool *pgxpool.Pool, deps *jobs.Deps, concurrency int) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := jobs.NewWorkerClient(pool, deps, jobs.ClientConfig{Concurrency: concurrency, Tune: func(c *river.Config) {
		c.FetchCooldown = 10 * time.Millisecond
		c.FetchPollInterval = 50 * time.Millisecond
		c.Logger = slog.New(slog.DiscardHandler)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.StopAndCancel(ctx) // a test may have stopped it already
	})
	return client
}

// VerifyNoLeaks is a TestMain: it runs the tests and fails the package if
// goroutines outlive them, apart from pgxpool's health check and idle HTTP
// keep-alive connections.
func VerifyNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	)
}
