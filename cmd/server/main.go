// Command server runs tenantsync's web server: the customer portal, the
// operator console and the JSON API. `server migrate` applies the database
// migrations and exits; `server healthcheck` asks a running server's
// /healthz on 127.0.0.1 and exits non-zero unless it answers 200 (for
// container health checks).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tenantsync/tenantsync/internal/config"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/httpserver"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
	"github.com/tenantsync/tenantsync/internal/webapp"
)

// shutdownGrace is how long in-flight requests may take after SIGTERM.
const shutdownGrace = 20 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

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
			return health.Probe(ctx, "HTTP_ADDR", getenv("HTTP_ADDR"), ":8080")
		default:
			return fmt.Errorf("unknown command %q (want migrate, healthcheck or none)", args[0])
		}
	}
	c, err := config.LoadServer(getenv)
	if err != nil {
		return err
	}
	logger := config.NewLogger(c.Common, stdout)
	pool, err := postgres.OpenCurrent(ctx, c.DatabaseURL.Reveal(), "server", 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := postgres.New(pool)
	hc, err := entra.NewHTTPClient(c.CAFile)
	if err != nil {
		return err
	}
	base := strings.TrimRight(c.PublicBaseURL, "/")
	signin, err := entra.NewSignIn(entra.SignInConfig{
		AuthorityHost: c.AuthorityHost, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(),
		CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile, FederatedTokenFile: c.FederatedTokenFile,
		RedirectURL: base + "/auth/callback", HTTPClient: hc,
	})
	if err != nil {
		return err
	}
	inserter, err := queue.NewInserter(pool)
	if err != nil {
		return fmt.Errorf("river inserter: %w", err)
	}
	// cmd/server is the composition root: webapp builds none of its
	// collaborators.
	ob := onboarding.New(onboarding.Config{
		Registry: webapp.NewRegistry(store, inserter),
		ConsentURL: func(tenantID, state string) string {
			return entra.AdminConsentURL(c.AuthorityHost, tenantID, c.ClientID, base+"/connect/callback", state)
		},
		AdminLink: webapp.AdminLink(base),
	})
	ready, err := health.NewChecker(pool)
	if err != nil {
		return err
	}
	defer ready.Close() //nolint:errcheck // a handle over the pool
	app, err := webapp.New(webapp.Config{
		PublicBaseURL: base, ClientID: c.ClientID, Pool: pool, Store: store, Jobs: inserter, SignIn: signin,
		Onboarding: ob, Actions: operator.New(store, inserter), Ready: ready, Metrics: metrics.New(),
		Logger:              logger,
		APIToken:            c.OperatorAPIToken.Reveal(),
		OperatorTenantID:    c.OperatorTenantID,
		TrustedProxies:      c.TrustedProxies,
		WebhookAllowPrivate: c.WebhookAllowPrivate,
	})
	if err != nil {
		return err
	}
	defer app.Close()

	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", c.HTTPAddr, err)
	}
	srv := httpserver.New(app, httpserver.Timeouts{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("server listening", "addr", ln.Addr().String(), "public_base_url", base)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Finish in-flight requests; new connections are refused from here on.
	logger.Info("server shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
