// Package metrics defines tenantsync's Prometheus metrics for both
// processes. Labels stay low-cardinality: routes, endpoints, statuses, kinds
// and outcomes, never a tenant ID. It imports no other tenantsync package.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every series; one instance per process, registered on its
// own registry so tests can build as many as they like.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	tokenAcquisitions *prometheus.CounterVec
	graphRequests     *prometheus.CounterVec
	graphDuration     *prometheus.HistogramVec
	throttledWaits    prometheus.Counter
	throttledSeconds  prometheus.Counter

	syncDuration *prometheus.HistogramVec
	syncChanges  *prometheus.CounterVec
	syncPages    prometheus.Counter

	webhookAttempts *prometheus.CounterVec
	webhookDuration prometheus.Histogram

	graphNotifications *prometheus.CounterVec
}

// New registers every series on a fresh registry, with the Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_http_requests_total", Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantsync_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		tokenAcquisitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_token_acquisitions_total", Help: "App-only token acquisitions by outcome (cache, issued, consent_missing, tenant_not_found, sp_disabled, app_credential, throttled, error).",
		}, []string{"outcome"}),
		graphRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_graph_requests_total", Help: "Microsoft Graph requests by endpoint and HTTP status (0 = no response).",
		}, []string{"endpoint", "status"}),
		graphDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantsync_graph_request_duration_seconds", Help: "Microsoft Graph request latency by endpoint.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		throttledWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantsync_graph_throttled_waits_total", Help: "Times a Graph request was throttled and waited for Retry-After.",
		}),
		throttledSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantsync_graph_throttled_seconds_total", Help: "Time spent waiting for Graph's Retry-After.",
		}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantsync_sync_duration_seconds", Help: "Directory sync run duration by kind (full, delta) and outcome.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"kind", "outcome"}),
		syncChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_sync_changes_total", Help: "Directory rows changed by sync runs, by change (upsert, delete).",
		}, []string{"change"}),
		syncPages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantsync_sync_pages_total", Help: "Graph delta pages applied.",
		}),
		webhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_webhook_attempts_total", Help: "Webhook delivery attempts by outcome (delivered, http_error, no_response, refused).",
		}, []string{"outcome"}),
		webhookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tenantsync_webhook_attempt_duration_seconds", Help: "Webhook delivery attempt latency, until the response or the failure.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}),
		graphNotifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantsync_graph_notifications_total",
			Help: "Microsoft Graph change and lifecycle notifications received, by endpoint (notifications, lifecycle) and result " +
				"(validation, accepted, reauthorize, ignored, unknown_subscription, bad_client_state, tenant_mismatch, malformed, too_large, error); " +
				"per notification, or per request for validation, malformed and too_large.",
		}, []string{"endpoint", "result"}),
	}
	r.MustRegister(m.httpRequests, m.httpDuration, m.tokenAcquisitions, m.graphRequests, m.graphDuration,
		m.throttledWaits, m.throttledSeconds, m.syncDuration, m.syncChanges, m.syncPages, m.webhookAttempts, m.webhookDuration,
		m.graphNotifications, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	// A failing scrape-time gauge (database down) must not hide the rest.
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, ErrorHandling: promhttp.ContinueOnError})
}

// ObserveHTTP records one served request; route is the route pattern.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveToken records one token acquisition by outcome.
func (m *Metrics) ObserveToken(outcome string) {
	if m == nil {
		return
	}
	m.tokenAcquisitions.WithLabelValues(outcome).Inc()
}

// ObserveGraph records one Graph request; endpoint is a fixed name such as
// "users_delta", never a URL.
func (m *Metrics) ObserveGraph(endpoint string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.graphRequests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.graphDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// ObserveThrottled records one wait for Retry-After.
func (m *Metrics) ObserveThrottled(wait time.Duration) {
	if m == nil {
		return
	}
	m.throttledWaits.Inc()
	m.throttledSeconds.Add(wait.Seconds())
}

// ObserveSync records one finished sync run.
func (m *Metrics) ObserveSync(kind, outcome string, d time.Duration, pages, upserts, deletes int) {
	if m == nil {
		return
	}
	m.syncDuration.WithLabelValues(kind, outcome).Observe(d.Seconds())
	m.syncChanges.WithLabelValues("upsert").Add(float64(upserts))
	m.syncChanges.WithLabelValues("delete").Add(float64(deletes))
	m.syncPages.Add(float64(pages))
}

// ObserveWebhook records one webhook delivery attempt: its outcome
// (delivered, http_error, no_response, refused) and how long it took.
func (m *Metrics) ObserveWebhook(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.webhookAttempts.WithLabelValues(outcome).Inc()
	m.webhookDuration.Observe(d.Seconds())
}

// ObserveGraphNotifications records n Graph notifications (or one request)
// received at endpoint (notifications, lifecycle) with the given result.
func (m *Metrics) ObserveGraphNotifications(endpoint, result string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.graphNotifications.WithLabelValues(endpoint, result).Add(float64(n))
}

// Counter reads a gauge-like count at scrape time, e.g. tenants by status.
type Counter func(ctx context.Context) (map[string]float64, error)

// gaugeMaxAge is how long a gauge's values, once read, answer scrapes
// before they are read again. A count can cost its database a pass over
// many rows (River's jobs by state, one index entry per job, with a day's
// completed jobs kept: 55 ms a read at 500,000 jobs), and nothing stops a scraper
// from asking every second (the fleet benchmark did, and that cost was
// billed to the round it measured); Prometheus scrapes every 15 s or more.
const gaugeMaxAge = 10 * time.Second

// RegisterGauge adds a gauge family whose values are read by count at
// scrape time (bounded by a 2-second timeout), at most once per
// gaugeMaxAge, labelled by label.
func (m *Metrics) RegisterGauge(name, help, label string, count Counter) error {
	c := &scrapeGauge{desc: prometheus.NewDesc(name, help, []string{label}, nil), count: count, now: time.Now}
	if err := m.Registry.Register(c); err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	return nil
}

type scrapeGauge struct {
	desc  *prometheus.Desc
	count Counter
	now   func() time.Time

	mu     sync.Mutex // held across a read, so concurrent scrapes share it
	values map[string]float64
	read   time.Time // when values were read; zero before the first success
}

func (g *scrapeGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *scrapeGauge) Collect(ch chan<- prometheus.Metric) {
	values, err := g.current()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for label, v := range values {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}

// current returns the values read less than gaugeMaxAge ago, or reads
// them; a failed read is not kept, so the next scrape tries again.
func (g *scrapeGauge) current() (map[string]float64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !g.read.IsZero() && now.Sub(g.read) < gaugeMaxAge {
		return g.values, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	values, err := g.count(ctx)
	if err != nil {
		return nil, err
	}
	g.values, g.read = values, now
	return values, nil
}
