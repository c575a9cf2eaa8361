package entraemu

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// countingReceiver accepts notification POSTs with 202 and counts values,
// closing done when want values have arrived.
type countingReceiver struct {
	*httptest.Server
	n    atomic.Int64
	want atomic.Int64
	mu   sync.Mutex
	done chan struct{}
}

func newCountingReceiver() *countingReceiver {
	rc := &countingReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got := rc.n.Add(int64(bytes.Count(b, []byte(`"subscriptionId"`))))
		w.WriteHeader(http.StatusAccepted)
		if got == rc.want.Load() {
			rc.mu.Lock()
			close(rc.done)
			rc.mu.Unlock()
		}
	}))
	return rc
}

func (rc *countingReceiver) expect(n int) <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.n.Store(0)
	rc.want.Store(int64(n))
	rc.done = make(chan struct{})
	return rc.done
}

// BenchmarkNotificationFanOut changes one group in each of 1,000 tenants
// that hold two groups subscriptions each, and waits until all 2,000
// notifications have reached a loopback receiver (default 100 ms batch
// window included). As a baseline in the same run it POSTs the same 2,000
// bodies straight from 64 goroutines over one keep-alive client; it reports
// both round times and their ratio.
func BenchmarkNotificationFanOut(b *testing.B) {
	const tenants, subsPerTenant = 1000, 2
	seed := SmallSeed()
	var gids []string
	for i := range tenants {
		tid := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "bench-tenant-%d", i)).String()
		gid := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "bench-group-%d", i)).String()
		seed.Tenants = append(seed.Tenants, Tenant{ID: tid, DisplayName: fmt.Sprint("Bench", i), Consented: true,
			Domains: []string{fmt.Sprintf("bench%d.example", i)},
			Users:   []User{{UserPrincipalName: fmt.Sprintf("u@bench%d.example", i), DisplayName: "U", AccountEnabled: true}},
			Groups:  []Group{{ID: gid, DisplayName: "G"}}})
		gids = append(gids, gid)
	}
	e, err := New(Config{Seed: seed})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	rc := newCountingReceiver()
	defer rc.Close()
	benchSubscribe(e, seed.Tenants[len(seed.Tenants)-tenants:], subsPerTenant, rc.URL)

	body := batchBody([][]byte{[]byte(`{"subscriptionId":"x","changeType":"updated","resource":"Groups/x"}`)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: notifyWorkers}}
	defer client.CloseIdleConnections()
	baseline := func() {
		done := rc.expect(tenants * subsPerTenant)
		work := make(chan struct{})
		var wg sync.WaitGroup
		for range notifyWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					resp, err := client.Post(rc.URL, "application/json", bytes.NewReader(body))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		for range tenants * subsPerTenant {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		<-done
	}
	round := func(i int) {
		done := rc.expect(tenants * subsPerTenant)
		for k, t := range seed.Tenants[len(seed.Tenants)-tenants:] {
			if err := e.UpdateGroup(t.ID, Group{ID: gids[k], DisplayName: fmt.Sprint("G", i)}); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("round %d: %d of %d notifications", i, rc.n.Load(), tenants*subsPerTenant)
		}
	}
	round(-1) // warm the connection pools
	baseline()
	b.ResetTimer()
	var emu, base time.Duration
	for i := range b.N {
		start := time.Now()
		round(i)
		emu += time.Since(start)
		start = time.Now()
		baseline()
		base += time.Since(start)
	}
	b.ReportMetric(float64(emu.Milliseconds())/float64(b.N), "emu-ms/round")
	b.ReportMetric(float64(base.Milliseconds())/float64(b.N), "baseline-ms/round")
	b.ReportMetric(float64(emu)/float64(base), "emu/baseline")
}

// benchSubscribe adds n groups subscriptions per tenant directly (no
// handshake: the benchmark measures delivery).
func benchSubscribe(e *Emulator, tenants []Tenant, n int, target string) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	app := e.apps[0].ClientID
	for _, t := range tenants {
		for range n {
			s := &subscription{id: uuid.NewString(), tid: t.ID, appID: app, resource: "groups", kind: "groups",
				changeType: "updated,deleted", notificationURL: target, clientState: "bench",
				expires: e.now().Add(time.Hour)}
			s.changes, s.lifecycle = &subQueue{sub: s}, &subQueue{sub: s, lifecycle: true}
			e.addSubLocked(s)
		}
	}
}
