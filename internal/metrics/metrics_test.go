package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSeries(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveHTTP("/tenant", "GET", 200, 3*time.Millisecond)
	m.ObserveHTTP("", "GET", 404, time.Millisecond)
	m.ObserveToken("issued")
	m.ObserveGraph("users_delta", 429, 20*time.Millisecond)
	m.ObserveThrottled(1500 * time.Millisecond)
	m.ObserveSync("full", "succeeded", 2*time.Second, 3, 120, 4)
	if err := m.RegisterGauge("tenantsync_tenants", "Tenants by status.", "status", func(context.Context) (map[string]float64, error) {
		return map[string]float64{"active": 3, "pending": 1}, nil
	}); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`tenantsync_http_requests_total{method="GET",route="/tenant",status="200"} 1`,
		`tenantsync_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`tenantsync_token_acquisitions_total{outcome="issued"} 1`,
		`tenantsync_graph_requests_total{endpoint="users_delta",status="429"} 1`,
		`tenantsync_graph_throttled_seconds_total 1.5`,
		`tenantsync_sync_changes_total{change="upsert"} 120`,
		`tenantsync_sync_changes_total{change="delete"} 4`,
		`tenantsync_sync_duration_seconds_count{kind="full",outcome="succeeded"} 1`,
		`tenantsync_tenants{status="active"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestGaugeErrorDoesNotBreakScrape(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveToken("cache")
	if err := m.RegisterGauge("tenantsync_jobs", "Jobs by state.", "state", func(context.Context) (map[string]float64, error) {
		return nil, errors.New("database down")
	}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `tenantsync_token_acquisitions_total{outcome="cache"} 1`) {
		t.Errorf("status %d body %s", rec.Code, rec.Body.String())
	}
}

func TestNilMetricsIsANoop(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.ObserveHTTP("/", "GET", 200, 0)
	m.ObserveToken("x")
	m.ObserveGraph("x", 200, 0)
	m.ObserveThrottled(0)
	m.ObserveSync("full", "succeeded", 0, 0, 0, 0)
}

// TestGaugeReadAtMostOncePerMaxAge: scrapes within gaugeMaxAge of a read
// answer with its values; a later scrape reads again; a failed read is not
// kept.
func TestGaugeReadAtMostOncePerMaxAge(t *testing.T) {
	t.Parallel()
	m := New()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	reads, fail := 0, false
	g := &scrapeGauge{
		desc: prometheus.NewDesc("tenantsync_tenants", "Tenants by status.", []string{"status"}, nil),
		now:  func() time.Time { return now },
		count: func(context.Context) (map[string]float64, error) {
			reads++
			if fail {
				return nil, errors.New("database down")
			}
			return map[string]float64{"active": float64(reads)}, nil
		},
	}
	if err := m.Registry.Register(g); err != nil {
		t.Fatal(err)
	}
	expect := func(what, want string, wantReads int) {
		t.Helper()
		out := scrape(t, m)
		if want != "" && !strings.Contains(out, want) || want == "" && strings.Contains(out, "tenantsync_tenants{") || reads != wantReads {
			t.Errorf("%s: %d reads (want %d), scrape:\n%s", what, reads, wantReads, out)
		}
	}
	expect("first scrape", `tenantsync_tenants{status="active"} 1`, 1)
	now = now.Add(gaugeMaxAge - time.Second)
	expect("within the max age", `tenantsync_tenants{status="active"} 1`, 1)
	now = now.Add(time.Second)
	expect("at the max age", `tenantsync_tenants{status="active"} 2`, 2)
	now = now.Add(gaugeMaxAge)
	fail = true
	expect("a failed read", "", 3)
	expect("right after a failed read", "", 4)
	fail = false
	expect("after the failure", `tenantsync_tenants{status="active"} 5`, 5)
}
