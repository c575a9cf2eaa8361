// Command worker runs tenantsync's background jobs on River: verifying new
// consents, syncing directories, purging offboarded tenants, and (on the
// elected leader) the periodic sync fan-out. `worker migrate` applies the
// database migrations and exits; `worker healthcheck` asks a running
// worker's admin listener for /healthz on 127.0.0.1 and exits non-zero
// unless it answers 200 (for container health checks).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tenantsync/tenantsync/internal/config"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/httpserver"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		tuneGC()
	}
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
			return health.Probe(ctx, "WORKER_ADMIN_ADDR", getenv("WORKER_ADMIN_ADDR"), ":8081")
		default:
			return fmt.Errorf("unknown command %q (want migrate, healthcheck or none)", args[0])
		}
	}
	c, err := config.LoadWorker(getenv)
	if err != nil {
		return err
	}
	logger := config.NewLogger(c.Common, stdout)
	// Sized from what the process runs: pgx's default (max(4, cores)) is
	// smaller than the jobs and River need at once on a small machine.
	pool, err := postgres.OpenCurrent(ctx, c.DatabaseURL.Reveal(), "worker", jobs.PoolSize(c.Concurrency))
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
	store := postgres.New(pool)
	gc, err := graph.New(graph.Config{BaseURL: c.GraphBaseURL, HTTPClient: hc, Tokens: tokens, Gate: store,
		Observe: m.ObserveGraph, Throttled: m.ObserveThrottled})
	if err != nil {
		return err
	}
	deps := &jobs.Deps{
		Store: store, Tokens: tokens, Graph: gc, Logger: logger,
		SyncInterval: c.SyncInterval, PurgeAfter: c.PurgeAfter, EventsRetention: c.EventsRetention, ConsentPropagationWait: c.ConsentPropagationWait,
		SyncSlice: c.SyncSlice, SyncLease: c.SyncLease, RescueAfter: c.RescueAfter,
		Metrics: m, WebhookAllowPrivate: c.WebhookAllowPrivate,
		ChangeNotifications: c.Notifications(), NotificationURL: c.NotificationURL(), LifecycleURL: c.LifecycleURL(),
		SyncIntervalSubscribed: c.SyncIntervalSubscribed,
	}
	client, err := jobs.NewWorkerClient(pool, deps, jobs.ClientConfig{Concurrency: c.Concurrency})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}

	if err := registerGauges(m, store); err != nil {
		return err
	}
	ready, err := health.NewChecker(pool)
	if err != nil {
		return err
	}
	defer ready.Close() //nolint:errcheck // a handle over the pool
	admin, err := startAdmin(c.AdminAddr, c.Pprof, ready, m, logger)
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
func startAdmin(addr string, profiles bool, ready *health.Checker, m *metrics.Metrics, logger *slog.Logger) (io.Closer, error) {
	mux := http.NewServeMux()
	timeouts := httpserver.Timeouts{}
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		// A CPU profile or trace lasts ?seconds= (30 by default).
		timeouts.Write = 10 * time.Minute
	}
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready.Check(r.Context()); err != nil {
			logger.Warn("not ready", "error", err.Error())
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	srv := httpserver.New(mux, timeouts)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener stopped", "error", err.Error())
		}
	}()
	return srv, nil
}
