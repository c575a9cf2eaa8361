package health_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestChecker: ready on a migrated database, not ready one migration
// behind and ready again once migrated (it reads the state on every call),
// and not ready once the database is unreachable.
func TestChecker(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ready, err := health.NewChecker(pool)
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	if err := ready.Check(t.Context()); err != nil {
		t.Fatalf("Check on a migrated database: %v", err)
	}
	m, err := postgres.NewMigrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	versions := m.Versions()
	if len(versions) < 2 {
		t.Fatalf("versions %v", versions)
	}
	if err := m.DownTo(t.Context(), versions[len(versions)-2]); err != nil {
		t.Fatal(err)
	}
	if err := ready.Check(t.Context()); !errors.Is(err, postgres.ErrSchemaBehind) {
		t.Fatalf("Check with the schema behind: %v, want ErrSchemaBehind", err)
	}
	if _, err := m.Up(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ready.Check(t.Context()); err != nil {
		t.Fatalf("Check after migrating again: %v", err)
	}
	pool.Close()
	if err := ready.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "database unreachable") {
		t.Fatalf("Check on a closed pool: %v", err)
	}
}

// healthServer answers status on GET /healthz and 404 elsewhere; it returns
// the port it listens on (127.0.0.1).
func healthServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestProbe(t *testing.T) {
	t.Parallel()
	ok, unavailable := healthServer(t, http.StatusOK), healthServer(t, http.StatusServiceUnavailable)
	ctx := context.Background()
	for _, c := range []struct {
		name, addr, defaultAddr string
		wantErr                 string // "" means success
	}{
		{"port only", ":" + ok, ":1", ""},
		{"the host is ignored: 127.0.0.1 is dialled", "192.0.2.1:" + ok, ":1", ""},
		{"empty addr takes the default", "", ":" + ok, ""},
		{"503", ":" + unavailable, ":1", "503"},
		{"no port", "localhost", ":1", `TEST_ADDR "localhost" has no port`},
		{"empty port", "localhost:", ":1", `TEST_ADDR "localhost:" has no port`},
		{"empty addr and default without port", "", "nope", `TEST_ADDR "nope" has no port`},
	} {
		err := health.Probe(ctx, "TEST_ADDR", c.addr, c.defaultAddr)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestProbeWithoutListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := health.Probe(context.Background(), "TEST_ADDR", addr, ""); err == nil {
		t.Fatal("Probe passed with nothing listening")
	}
}
