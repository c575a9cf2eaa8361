package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// lockedBuffer is a log sink the test may read while the worker writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// metricValue returns the value of the first series line matching re, or -1.
func metricValue(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// After the worker synced a tenant from the emulator, /metrics holds the
// sync, Graph, token and tenant series with values that match what happened.
func TestMetricsAfterSync(t *testing.T) {
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed()})
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
	tid := entraemu.ContosoTenantID
	if _, err := pool.Exec(context.Background(),
		`INSERT INTO tenants (id, status, next_sync_at) VALUES ($1, 'active', now() - interval '1 minute')`, tid); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": dbURL, "ENTRA_AUTHORITY_HOST": srv.AuthorityHost, "GRAPH_BASE_URL": srv.GraphBaseURL,
		"ENTRA_CLIENT_ID": srv.DefaultApp().ClientID, "ENTRA_CLIENT_SECRET": srv.DefaultApp().Secrets[0].Value,
		"ENTRA_CA_FILE": ca, "WORKER_ADMIN_ADDR": addr, "LOG_FORMAT": "text",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out lockedBuffer
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	var synced bool
	for range 600 { // the fan-out runs on start; a small tenant syncs in well under a minute
		// River records a job's completion a little after the job returns
		// (its completer batches them); the scrape must come after both.
		var n, completed int
		if err := pool.QueryRow(context.Background(), `SELECT
	(SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND outcome = 'succeeded'),
	(SELECT count(*) FROM river_job WHERE kind = 'sync_tenant' AND state = 'completed')`, tid).Scan(&n, &completed); err != nil {
			t.Fatal(err)
		}
		if synced = n > 0 && completed > 0; synced {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !synced {
		t.Fatalf("no successful sync; worker log:\n%s", out.String())
	}
	var users, upserts int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM directory_users WHERE tenant_id = $1), (SELECT sum(upserts) FROM sync_runs WHERE tenant_id = $1)`, tid).Scan(&users, &upserts); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(raw)
	checks := []struct {
		series string
		ok     func(v float64) bool
		want   string
	}{
		{`tenantsync_sync_duration_seconds_count{kind="full",outcome="succeeded"}`, func(v float64) bool { return v == 1 }, "1"},
		{`tenantsync_sync_changes_total{change="upsert"}`, func(v float64) bool { return int(v) == upserts && v >= float64(users) }, "the run's upserts, at least the users synced"},
		{`tenantsync_graph_requests_total{endpoint="users_delta",status="200"}`, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{`tenantsync_graph_requests_total{endpoint="groups_delta",status="200"}`, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{`tenantsync_token_acquisitions_total{outcome="issued"}`, func(v float64) bool { return v == 1 }, "1 (one tenant, one token)"},
		{`tenantsync_tenants{status="active"}`, func(v float64) bool { return v == 1 }, "1"},
		{`tenantsync_river_jobs{state="completed"}`, func(v float64) bool { return v >= 1 }, "≥ 1"},
	}
	for _, c := range checks {
		if v := metricValue(body, c.series); !c.ok(v) {
			t.Errorf("%s = %v, want %s", c.series, v, c.want)
		}
	}
	if regexp.MustCompile(`tenant_id="|` + tid).MatchString(body) {
		t.Error("a tenant ID appears in the metrics")
	}
	// The sync's log line names the tenant, the job and the sync run.
	if !regexp.MustCompile(`msg="tenant synced".* job_id=\d+ .*tenant_id=` + tid + ` sync_run_id=\d+`).MatchString(out.String()) {
		t.Errorf("no tenant synced line with job_id, tenant_id and sync_run_id in:\n%s", out.String())
	}
}
