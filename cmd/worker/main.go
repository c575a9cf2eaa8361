// Command worker runs tenantsync's background jobs on River: verifying new
// consents, syncing directories, purging offboarded tenants, and (on the
// elected leader) the periodic sync fan-out. `worker migrate` applies the
// database migrations and exits; `worker healthcheck` asks a running
// worker's admin listener for /healthz (for container health checks).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/config"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// softStopTimeout is how long running jobs get to finish after SIGTERM
// before their contexts are cancelled (they then snooze and resume from
// their last checkpoint on another worker).
const softStopTimeout = 20 * time.Second

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "migrate":
			c, err := config.LoadMigrate(getenv)
			if err != nil {
				return err
			}
			return postgres.MigrateCommand(ctx, c.DatabaseURL.Reveal(), config.NewLogger(c.Common, stdout), stdout)
		case "healthcheck":
			return healthcheck(ctx, getenv("WORKER_ADMIN_ADDR"))
		default:
			return fmt.Errorf("unknown command %q (want migrate, healthcheck or none)", args[0])
		}
	}
	c, err := config.LoadWorker(getenv)
	if err != nil {
		return err
	}
	logger := config.NewLogger(c.Common, stdout)
	pool, err := postgres.OpenCurrent(ctx, c.DatabaseURL.Reveal(), "worker")
	if err != nil {
		return err
	}
	defer pool.Close()

	m := metrics.New()
	hc, err := entra.NewHTTPClient(c.CAFile)
	if err != nil {
		return err
	}
	tokens, err := entra.NewTokenSource(entra.TokenConfig{
		AuthorityHost: c.AuthorityHost, GraphBaseURL: c.GraphBaseURL, ClientID: c.ClientID,
		Secret: c.ClientSecret.Reveal(), CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile,
		FederatedTokenFile: c.FederatedTokenFile, HTTPClient: hc, Observe: m.ObserveToken,
	})
	if err != nil {
		return err
	}
	gc, err := graph.New(graph.Config{BaseURL: c.GraphBaseURL, HTTPClient: hc, Tokens: tokens,
		Observe: m.ObserveGraph, Throttled: m.ObserveThrottled})
	if err != nil {
		return err
	}
	store := postgres.New(pool)
	deps := &jobs.Deps{
		Store: store, Tokens: tokens, Graph: gc, Logger: logger,
		SyncInterval: c.SyncInterval, PurgeAfter: c.PurgeAfter, ConsentPropagationWait: c.ConsentPropagationWait,
		Metrics: m,
	}
	client, err := jobs.NewWorkerClient(pool, deps, jobs.ClientConfig{Concurrency: c.Concurrency})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}

	if err := registerGauges(m, store); err != nil {
		return err
	}
	admin, err := startAdmin(c.AdminAddr, pool, m, logger)
	if err != nil {
		return err
	}
	defer admin.Close()

	// River's own context must outlive ctx: stopping is done below.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	logger.Info("worker started", "concurrency", c.Concurrency, "sync_interval", c.SyncInterval.String(),
		"admin_addr", c.AdminAddr, "graph", c.GraphBaseURL, "authority", c.AuthorityHost)
	<-ctx.Done()

	logger.Info("worker stopping", "soft_stop_timeout", softStopTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), softStopTimeout)
	defer cancel()
	if err := client.Stop(sctx); err != nil {
		logger.Warn("jobs still running after the soft stop timeout; cancelling them", "error", err.Error())
		hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer hcancel()
		if err := client.StopAndCancel(hctx); err != nil {
			return fmt.Errorf("stop river: %w", err)
		}
	}
	logger.Info("worker stopped")
	return nil
}

// registerGauges adds the scrape-time counts of tenants by status and River
// jobs by state.
func registerGauges(m *metrics.Metrics, store *postgres.Store) error {
	if err := m.RegisterGauge("tenantsync_tenants", "Tenants by status.", "status", store.TenantCountByStatus); err != nil {
		return err
	}
	return m.RegisterGauge("tenantsync_river_jobs", "River jobs by state.", "state", store.JobCountByState)
}

// startAdmin serves /healthz (the process is up), /readyz (the database
// answers and its schema is current) and /metrics.
func startAdmin(addr string, pool *pgxpool.Pool, m *metrics.Metrics, logger *slog.Logger) (io.Closer, error) {
	// Built once: /readyz asks it on every probe.
	schema, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		if err := schema.Check(ctx); err != nil {
			http.Error(w, "database schema is not current", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n") //nolint:errcheck
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		schema.Close() //nolint:errcheck // a handle over the pool
		return nil, fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener stopped", "error", err.Error())
		}
	}()
	return srv, nil
}

// healthcheck GETs http://127.0.0.1{addr}/healthz; addr is WORKER_ADMIN_ADDR
// (":8081" by default, or host:port).
func healthcheck(ctx context.Context, addr string) error {
	if addr == "" {
		addr = ":8081"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}
