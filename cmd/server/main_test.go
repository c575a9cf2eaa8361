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

func serverEnv(t *testing.T, databaseURL string) map[string]string {
	t.Helper()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"DATABASE_URL": databaseURL, "ENTRA_AUTHORITY_HOST": srv.AuthorityHost, "GRAPH_BASE_URL": srv.GraphBaseURL,
		"ENTRA_CLIENT_ID": srv.DefaultApp().ClientID, "ENTRA_CLIENT_SECRET": srv.DefaultApp().Secrets[0].Value,
		"ENTRA_CA_FILE": ca, "HTTP_ADDR": freeAddr(t), "LOG_FORMAT": "text",
	}
}

func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	env := serverEnv(t, pgtest.URL(t))
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, nil, getenv, &out) }()

	ok := false
	for range 400 {
		if err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard); err == nil {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		cancel()
		t.Fatalf("healthcheck never passed: %v", <-done)
	}
	for _, p := range []string{"/readyz", "/"} {
		resp, err := http.Get("http://" + env["HTTP_ADDR"] + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard); err == nil {
		t.Errorf("healthcheck passed after stop")
	}
	if !strings.Contains(out.String(), "server listening") || strings.Contains(out.String(), env["ENTRA_CLIENT_SECRET"]) {
		t.Errorf("log: %s", out.String())
	}
}

func TestRunRefusesSchemaBehind(t *testing.T) {
	t.Parallel()
	env := serverEnv(t, pgtest.Empty(t))
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "server migrate") {
		t.Fatalf("run on an empty database: %v", err)
	}
}

func TestHealthcheckWithoutServer(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	if err := run(context.Background(), []string{"healthcheck"}, func(k string) string {
		if k == "HTTP_ADDR" {
			return ":" + strings.Split(addr, ":")[1]
		}
		return ""
	}, io.Discard); err == nil {
		t.Fatal("healthcheck passed with no server")
	}
}
