package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
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
