// Command worker runs tenantsync's background jobs on River: verifying new
// consents, syncing directories, purging offboarded tenants. `worker migrate`
// applies the database migrations and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tenantsync/tenantsync/internal/config"
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

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" {
		c, err := config.LoadMigrate(getenv)
		if err != nil {
			return err
		}
		return postgres.MigrateCommand(ctx, c.DatabaseURL.Reveal(), config.NewLogger(c.Common, stdout), stdout)
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
	logger.Info("worker started", "concurrency", c.Concurrency, "sync_interval", c.SyncInterval.String())
	<-ctx.Done()
	return nil
}
