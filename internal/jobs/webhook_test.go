package jobs_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

type webhookBundle struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	logs  *logBuffer
}

// setupWebhooks starts a worker with deps' webhook settings over a fresh
// database: a fast dispatcher and sweep, and a short retry schedule unless
// the test sets its own.
func setupWebhooks(t *testing.T, deps *jobs.Deps) *webhookBundle {
	t.Helper()
	pool := pgtest.Pool(t)
	store := postgres.New(pool)
	logs := &logBuffer{}
	deps.Store = store
	deps.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps.WebhookDispatchInterval = 50 * time.Millisecond
	deps.WebhookSweepInterval = 200 * time.Millisecond
	if deps.WebhookRetrySchedule == nil {
		deps.WebhookRetrySchedule = []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	jobstest.StartWorker(t, pool, deps, 10)
	return &webhookBundle{pool: pool, store: store, logs: logs}
}

func (b *webhookBundle) endpoint(t *testing.T, url string, types ...domain.EventType) domain.WebhookEndpoint {
	t.Helper()
	ep, err := b.store.WebhookEndpointCreate(context.Background(), domain.WebhookEndpoint{URL: url, Secret: webhook.NewSecret(), EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// event commits one change-feed event in its own transaction.
func (b *webhookBundle) event(t *testing.T, tenant string, typ domain.EventType, n int) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, $2, $3)`,
		tenant, typ, map[string]int{"n": n}); err != nil {
		t.Fatal(err)
	}
}

func (b *webhookBundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 50 ms for up to three minutes (generous for a
// busy machine; nothing here asserts on time).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3600 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// payload is the delivered JSON.
type payload struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	TenantID   string          `json:"tenant_id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       struct{ N int } `json:"data"`
}

// outageListener accepts connections and, while down, closes them at once:
// the receiver is unreachable.
type outageListener struct {
	net.Listener
	down atomic.Bool
}

func (l *outageListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return c, err
		}
		_ = c.Close()
	}
}

// TestWebhookDeliveryThroughFailures is the proof: 200 tenants × 3
// events to a receiver that is unreachable at first and then fails half of
// the requests at random (some after processing them, as when a response is
// lost). Once it recovers, every event arrives, each tenant's in feed order,
// every request verifies with the Standard Webhooks reference library, and
// a receiver deduplicating by webhook-id processes each event exactly once.
// No secret reaches the log.
func TestWebhookDeliveryThroughFailures(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	b := setupWebhooks(t, &jobs.Deps{WebhookAllowPrivate: true, Metrics: m})

	const tenants, perTenant = 200, 3
	var (
		mu        sync.Mutex
		verifier  *standardwebhooks.Webhook
		processed = map[string]bool{}  // webhook-id → processed
		order     = map[string][]int{} // tenant → n in the order processed
		requests  int
		dupes     int
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ol := &outageListener{Listener: ln}
	ol.down.Store(true)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		requests++
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("reference verifier refuses a delivery: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		roll := rand.IntN(4)
		if roll == 0 {
			w.WriteHeader(http.StatusServiceUnavailable) // failed before processing
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload %s: %v", body, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		if id != p.ID || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook-id %q for event %q, content type %q", id, p.ID, r.Header.Get("Content-Type"))
		}
		if processed[id] {
			dupes++
		} else {
			processed[id] = true
			order[p.TenantID] = append(order[p.TenantID], p.Data.N)
		}
		if roll == 1 {
			w.WriteHeader(http.StatusInternalServerError) // processed, but the answer says otherwise
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Listener = ol
	srv.Start()
	defer srv.Close()

	ep := b.endpoint(t, srv.URL+"/hook")
	verifier, err = standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, tenants)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	for n := range perTenant {
		for _, tid := range ids {
			b.event(t, tid, domain.UserCreated, n)
		}
	}
	// Unreachable until a good number of attempts have failed.
	waitFor(t, "failed attempts while the receiver is down", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE last_error <> ''`) >= 50
	})
	ol.down.Store(false)
	waitFor(t, "every event processed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(processed) == tenants*perTenant
	})
	waitFor(t, "every delivery recorded as delivered", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'`) == tenants*perTenant
	})

	mu.Lock()
	defer mu.Unlock()
	for _, tid := range ids {
		if got := order[tid]; len(got) != perTenant || got[0] != 0 || got[1] != 1 || got[2] != 2 {
			t.Errorf("tenant %s processed %v, want [0 1 2]", tid, got)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries`); n != tenants*perTenant {
		t.Errorf("%d delivery rows, want one per event (%d)", n, tenants*perTenant)
	}
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE attempts > 1`); n == 0 {
		t.Error("no delivery needed a second attempt: the outage and the failures did not happen")
	}
	if dupes == 0 {
		t.Error("no event was sent again after a lost answer: the deduplication was not exercised")
	}
	t.Logf("%d requests for %d events; %d duplicates dropped by the receiver", requests, len(processed), dupes)
	if b.logs.count("webhook delivery failed") == 0 {
		t.Error("failed attempts were not logged")
	}
	if key := strings.TrimPrefix(ep.Secret, "whsec_"); b.logs.count(key) > 0 || b.logs.count("v1,") > 0 {
		t.Error("the secret or a signature reached the log")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scraped := rec.Body.String()
	for _, want := range []string{
		fmt.Sprintf(`tenantsync_webhook_attempts_total{outcome="delivered"} %d`, tenants*perTenant),
		`tenantsync_webhook_attempts_total{outcome="http_error"}`, `tenantsync_webhook_attempts_total{outcome="no_response"}`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestWebhookDeliveryRefusesPrivateAddress: a stored URL whose name now
// resolves to loopback (as after a DNS change, here localhost) is refused
// at dial time, on the address actually dialled, when
// WEBHOOK_ALLOW_PRIVATE is off; the receiver sees nothing and the attempt
// is recorded as failed with the reason.
func TestWebhookDeliveryRefusesPrivateAddress(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	b := setupWebhooks(t, &jobs.Deps{WebhookTLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}})
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	ep := b.endpoint(t, "https://localhost"+port+"/hook")
	b.event(t, uuid.NewString(), domain.UserDisabled, 1)
	waitFor(t, "a failed attempt", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND attempts > 0`, ep.ID) > 0
	})
	ds, err := b.store.WebhookDeliveryList(context.Background(), ep.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != domain.DeliveryPending || !strings.Contains(ds[0].LastError, "refused") || ds[0].LastStatusCode != nil {
		t.Fatalf("deliveries %+v, want one pending, refused, without a status", ds)
	}
	// An http URL (saved while WEBHOOK_ALLOW_PRIVATE was on elsewhere) is
	// refused too, before any connection.
	plain := b.endpoint(t, "http://hooks.example.com/hook")
	b.event(t, uuid.NewString(), domain.UserDisabled, 2)
	waitFor(t, "a failed attempt over http", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND attempts > 0`, plain.ID) > 0
	})
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND last_error LIKE 'refused: %not https%'`, plain.ID); n == 0 {
		t.Error("an http endpoint was not refused as such")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver on loopback got %d requests", n)
	}
}

// TestWebhookSecretRotation: while the previous secret has not expired a
// delivery verifies (reference library) with the old and the new secret;
// after it expired, only with the new one.
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), body})
		mu.Unlock()
	}))
	defer srv.Close()
	b := setupWebhooks(t, &jobs.Deps{WebhookAllowPrivate: true})
	ctx := context.Background()
	ep := b.endpoint(t, srv.URL)
	oldSecret, newSecret := ep.Secret, webhook.NewSecret()
	if err := b.store.WebhookEndpointRotate(ctx, ep.ID, newSecret, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	verifies := func(secret string, r received) bool {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(r.body, r.header) == nil
	}
	last := func(n int) received {
		waitFor(t, "a delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n })
		mu.Lock()
		defer mu.Unlock()
		return got[n-1]
	}
	tid := uuid.NewString()
	b.event(t, tid, domain.UserCreated, 1)
	r := last(1)
	if !verifies(oldSecret, r) || !verifies(newSecret, r) {
		t.Errorf("during the overlap: old verifies %v, new verifies %v; want both (signature %q)",
			verifies(oldSecret, r), verifies(newSecret, r), r.header.Get("webhook-signature"))
	}
	// As if 24 hours had passed.
	if _, err := b.pool.Exec(ctx, `UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, ep.ID); err != nil {
		t.Fatal(err)
	}
	b.event(t, tid, domain.UserUpdated, 2)
	r = last(2)
	if verifies(oldSecret, r) || !verifies(newSecret, r) {
		t.Errorf("after the overlap: old verifies %v, new verifies %v; want only the new", verifies(oldSecret, r), verifies(newSecret, r))
	}
}

// TestWebhookEndpointDisabledAndTypes: an endpoint failing for longer than
// WebhookDisableAfter is disabled with a reason and its deliveries wait;
// enabled again, they are delivered at once, not at the retry scheduled
// while it failed. Only the endpoint's event types are delivered.
func TestWebhookEndpointDisabledAndTypes(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	var mu sync.Mutex
	var types []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var p payload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		types = append(types, p.Type)
		mu.Unlock()
	}))
	defer srv.Close()
	// The second failure disables the endpoint and schedules the next
	// attempt an hour ahead: enabling it must not wait for that.
	b := setupWebhooks(t, &jobs.Deps{WebhookAllowPrivate: true, WebhookDisableAfter: time.Millisecond,
		WebhookRetrySchedule: []time.Duration{10 * time.Millisecond, time.Hour}})
	ctx := context.Background()
	ep := b.endpoint(t, srv.URL, domain.UserDisabled, domain.UserDeleted)
	tid := uuid.NewString()
	b.event(t, tid, domain.UserCreated, 1)
	b.event(t, tid, domain.UserDisabled, 2)
	b.event(t, tid, domain.UserDeleted, 3)
	waitFor(t, "the endpoint disabled", func() bool {
		got, err := b.store.WebhookEndpointGet(ctx, ep.ID)
		return err == nil && got.Disabled
	})
	got, err := b.store.WebhookEndpointGet(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.DisabledReason, "502") || got.FailingSince == nil {
		t.Errorf("disabled with reason %q, failing since %v", got.DisabledReason, got.FailingSince)
	}
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'`, ep.ID); n != 2 {
		t.Errorf("%d pending deliveries while disabled, want both waiting", n)
	}
	healthy.Store(true)
	enable := false
	if _, err := b.store.WebhookEndpointUpdate(ctx, ep.ID, postgres.WebhookEndpointPatch{Disabled: &enable}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both delivered after enabling", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivered'`, ep.ID) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(types, ",") != "user.disabled,user.deleted" {
		t.Errorf("delivered %v, want user.disabled then user.deleted (no user.created)", types)
	}
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE event_type = 'user.created'`); n != 0 {
		t.Errorf("%d deliveries of a type the endpoint does not take", n)
	}
	if got, err := b.store.WebhookEndpointGet(ctx, ep.ID); err != nil || got.FailingSince != nil {
		t.Errorf("after success: failing since %v (%v), want healthy", got.FailingSince, err)
	}
	// An event of a type the endpoint does not take still moves its
	// position, so it is not read again on every run.
	var seq int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'group.created', '{}') RETURNING seq`, tid).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the position past an unwanted event", func() bool {
		got, err := b.store.WebhookEndpointGet(ctx, ep.ID)
		return err == nil && got.Pos.Seq >= seq
	})
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, ep.ID); n != 2 {
		t.Errorf("%d deliveries after an unwanted event, want still 2", n)
	}
}

// TestWebhookSlowReceiverIsAFailedAttempt: a receiver that does not answer
// in time is a failed attempt, recorded and retried on the schedule, even
// when the job's own timeout is short (WORKER_RESCUE_AFTER 2s: jobs time
// out after 1s); cancelled by the job's timeout instead, the attempt would
// never count.
func TestWebhookSlowReceiverIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	b := setupWebhooks(t, &jobs.Deps{WebhookAllowPrivate: true, RescueAfter: 2 * time.Second})
	ep := b.endpoint(t, srv.URL)
	b.event(t, uuid.NewString(), domain.UserCreated, 1)
	waitFor(t, "a timed-out attempt recorded", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND attempts > 0 AND last_error LIKE 'no response within%'`, ep.ID) > 0
	})
}

// TestWebhookHistoryRetention: finished deliveries older than the
// retention are deleted by the dispatcher's sweep; recent ones and pending
// ones, however old, stay.
func TestWebhookHistoryRetention(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t, &jobs.Deps{WebhookAllowPrivate: true, WebhookHistoryRetention: time.Hour})
	// An endpoint nobody listens on, disabled so nothing is sent.
	ep := b.endpoint(t, "http://127.0.0.1:1/")
	if err := b.store.WebhookEndpointDisable(context.Background(), ep.ID, "test"); err != nil {
		t.Fatal(err)
	}
	insert := func(status, age string) {
		t.Helper()
		if _, err := b.pool.Exec(context.Background(), `
INSERT INTO webhook_deliveries (endpoint_id, event_id, tenant_id, event_type, event_xid, event_seq, status, created_at)
VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'user.created', '1', 1, $2, now() - $3::interval)`, ep.ID, status, age); err != nil {
			t.Fatal(err)
		}
	}
	insert("delivered", "2 hours")
	insert("expired", "3 hours")
	insert("delivered", "1 minute")
	insert("pending", "5 hours")
	waitFor(t, "old finished deliveries deleted", func() bool {
		return b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'pending' AND created_at < now() - interval '1 hour'`) == 0
	})
	if n := b.count(t, `SELECT count(*) FROM webhook_deliveries`); n != 2 {
		t.Errorf("%d deliveries left, want the recent delivered one and the old pending one", n)
	}
}
