package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunServesHealthAndStops(t *testing.T) {
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": pgtest.URL(t), "ENTRA_AUTHORITY_HOST": srv.AuthorityHost, "GRAPH_BASE_URL": srv.GraphBaseURL,
		"ENTRA_CLIENT_ID": srv.DefaultApp().ClientID, "ENTRA_CLIENT_SECRET": srv.DefaultApp().Secrets[0].Value,
		"ENTRA_CA_FILE": ca, "WORKER_ADMIN_ADDR": addr, "LOG_FORMAT": "text",
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, nil, getenv, &out) }()

	ok := false
	for range 200 {
		if err := run(context.Background(), []string{"healthcheck"}, getenv, &out); err == nil {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Fatal("healthcheck never passed")
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck"}, getenv, &out); err == nil {
		t.Errorf("healthcheck passed after stop")
	}
}

func TestHealthcheckNeedsAPort(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"healthcheck"}, func(k string) string {
		if k == "WORKER_ADMIN_ADDR" {
			return "localhost"
		}
		return ""
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `WORKER_ADMIN_ADDR "localhost" has no port`) {
		t.Fatalf("healthcheck with no port: %v", err)
	}
}

// TestAdminProfilesOnlyWhenAsked: Go's profiles are on the admin listener
// with WORKER_PPROF=true only.
func TestAdminProfilesOnlyWhenAsked(t *testing.T) {
	ready, err := health.NewChecker(pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	logger := slog.New(slog.DiscardHandler)
	for _, on := range []bool{false, true} {
		addr := freeAddr(t)
		admin, err := startAdmin(addr, on, ready, metrics.New(), logger)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want || on && len(body) == 0 {
				t.Errorf("WORKER_PPROF=%v: GET %s: %s with %d bytes, want %d", on, path, resp.Status, len(body), want)
			}
		}
		admin.Close()
	}
}
