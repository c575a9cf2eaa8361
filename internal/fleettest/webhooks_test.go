package fleettest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

// dedupReceiver is a webhook receiver that verifies every request with the
// Standard Webhooks reference library and processes each webhook-id once.
// Once hold is set, it processes requests and then does not answer until
// release is closed: the sender is caught between the receiver's processing
// and its own record of the delivery.
type dedupReceiver struct {
	t        *testing.T
	verifier *standardwebhooks.Webhook
	release  chan struct{}

	mu        sync.Mutex
	processed map[string]bool
	order     map[string][]int // tenant → data.n in processing order
	dupes     int
	held      int
	hold      bool
}

func (r *dedupReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := r.verifier.Verify(body, req.Header); err != nil {
		r.t.Errorf("reference verifier refuses a delivery: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		ID       string          `json:"id"`
		TenantID string          `json:"tenant_id"`
		Data     struct{ N int } `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ID != req.Header.Get("webhook-id") {
		r.t.Errorf("payload %s (%v) under webhook-id %q", body, err, req.Header.Get("webhook-id"))
	}
	r.mu.Lock()
	if r.processed[p.ID] {
		r.dupes++
	} else {
		r.processed[p.ID] = true
		r.order[p.TenantID] = append(r.order[p.TenantID], p.Data.N)
	}
	hold := r.hold
	if hold {
		r.held++
	}
	r.mu.Unlock()
	if hold {
		<-r.release
	}
	w.WriteHeader(http.StatusOK)
}

func (r *dedupReceiver) state() (processed, held, dupes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.processed), r.held, r.dupes
}

// TestWebhookWorkerKill: the worker process is SIGKILLed while deliveries
// are in flight — the receiver has processed them but the worker has not
// recorded them. Restarted, the worker delivers every event; the ones in
// flight are sent again under the same webhook-id, which the deduplicating
// receiver drops, so each event is processed exactly once and each
// tenant's in feed order.
func TestWebhookWorkerKill(t *testing.T) {
	tenants, perTenant := size(100, 30), 5
	seed, _ := fleetSeed(0, 0)
	h := newHarness(t, seed, nil, pgtest.URL(t))
	h.env = map[string]string{"WEBHOOK_ALLOW_PRIVATE": "true", "WORKER_RESCUE_AFTER": "4s", "SYNC_SLICE": "1s"}
	ctx := context.Background()

	secret := webhook.NewSecret()
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rcv := &dedupReceiver{t: t, verifier: verifier, release: make(chan struct{}),
		processed: map[string]bool{}, order: map[string][]int{}}
	srv := httptest.NewServer(rcv)
	// Unblock held handlers before Close waits for them.
	defer srv.Close()
	released := false
	release := func() {
		if !released {
			released = true
			close(rcv.release)
		}
	}
	defer release()

	if _, err := h.db.Exec(ctx, `INSERT INTO webhook_endpoints (url, secret) VALUES ($1, $2)`, srv.URL+"/hook", secret); err != nil {
		t.Fatal(err)
	}
	tids := make([]string, tenants)
	for i := range tids {
		tids[i] = fmt.Sprintf("3e600000-0000-4000-8000-%012d", i)
	}
	for n := range perTenant {
		for _, tid := range tids {
			if _, err := h.db.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.updated', $2)`,
				tid, map[string]int{"n": n}); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := tenants * perTenant
	h.startWorker()

	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Minute) // generous for a busy machine; not an assertion on time
		for !cond() {
			if time.Now().After(deadline) || h.worker.exited() {
				p, held, dupes := rcv.state()
				t.Fatalf("waiting for %s: processed %d of %d, %d held, %d duplicates; worker log:\n%s",
					what, p, total, held, dupes, indent(h.worker.tail(30)))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("a third of the events processed", func() bool { p, _, _ := rcv.state(); return p >= total/3 })
	rcv.mu.Lock()
	rcv.hold = true
	rcv.mu.Unlock()
	wait("a delivery processed but not answered", func() bool { _, held, _ := rcv.state(); return held > 0 })
	h.killWorker()
	release()
	_, held, _ := rcv.state()

	h.startWorker()
	wait("every event processed", func() bool { p, _, _ := rcv.state(); return p == total })
	wait("every delivery recorded", func() bool {
		var n int
		err := h.db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'`).Scan(&n)
		return err == nil && n == total
	})

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, tid := range tids {
		got := rcv.order[tid]
		ok := len(got) == perTenant
		for i := 0; ok && i < perTenant; i++ {
			ok = got[i] == i
		}
		if !ok {
			t.Errorf("tenant %s processed %v, want 0..%d in order", tid, got, perTenant-1)
		}
	}
	var rows int
	if err := h.db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&rows); err != nil || rows != total {
		t.Errorf("%d delivery rows (%v), want one per event (%d)", rows, err, total)
	}
	if rcv.dupes == 0 {
		t.Errorf("no delivery was sent again after the kill (%d were in flight): the kill did not land mid-delivery", held)
	}
	t.Logf("%d events processed once each; %d in flight at the kill, %d duplicates dropped by the receiver", total, held, rcv.dupes)
	if err := h.worker.stop(45 * time.Second); err != nil {
		t.Errorf("worker stop: %v", err)
	}
}
