package entraemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps only the last body, so the
// benchmark measures the emulator, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
	n      int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(s int)   { d.status = s }
func (d *discardWriter) Write(b []byte) (int, error) {
	d.n += len(b)
	d.body.Reset()
	d.body.Write(b)
	return len(b), nil
}

func millionUserSeed() *Seed {
	s := SmallSeed()
	s.Tenants = append(s.Tenants, Tenant{ID: "7a0c9a4e-1111-4c1b-9a3e-0000000f4240", DisplayName: "Megacorp",
		Domains: []string{"megacorp.example"}, Consented: true,
		Generate: &Generate{Users: 1_000_000, Groups: 1000, MembersPerGroup: 200, Seed: 99, AllUsersGroup: true}})
	return s
}

// BenchmarkUsersDelta1M serves complete initial users/delta rounds (default
// 200 users per page, $select of the sync's properties) of a 1,000,000-user
// tenant through GraphHandler on one goroutine, and reports users/s, pages/s,
// page JSON MB/s and the heap held by the emulator.
func BenchmarkUsersDelta1M(b *testing.B) {
	const tid = "7a0c9a4e-1111-4c1b-9a3e-0000000f4240"
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := New(Config{Seed: millionUserSeed(), ThrottleScale: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	e.mu.RLock()
	t := e.tenants[tid]
	tok, err := e.appToken(t, e.apps[0], t.sps[e.apps[0].ClientID], graphResourceURI, "1")
	e.mu.RUnlock()
	if err != nil {
		b.Fatal(err)
	}
	h := e.GraphHandler()
	first := "https://graph.test/v1.0/users/delta?$select=displayName,givenName,surname,userPrincipalName,mail,jobTitle,accountEnabled"
	var users, pages, bytesOut int
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		u := first
		for u != "" {
			req := httptest.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("%s: %d %s", u, w.status, w.body.String())
			}
			var page struct {
				Next  string            `json:"@odata.nextLink"`
				Value []json.RawMessage `json:"value"`
			}
			// Only the link is needed; decoding the whole page would measure the client.
			if i := bytes.Index(w.body.Bytes(), []byte(`"value":[`)); i > 0 {
				json.Unmarshal(append(append([]byte{}, w.body.Bytes()[:i]...), []byte(`"value":[]}`)...), &page)
			}
			users += bytes.Count(w.body.Bytes(), []byte(`{"id":`))
			pages++
			bytesOut += w.n
			u = page.Next
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	if users != 1_000_000*b.N {
		b.Fatalf("served %d users, want %d", users, 1_000_000*b.N)
	}
	b.ReportMetric(float64(users)/elapsed.Seconds(), "users/s")
	b.ReportMetric(float64(pages)/elapsed.Seconds(), "pages/s")
	b.ReportMetric(float64(bytesOut)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(after.HeapInuse-min(before.HeapInuse, after.HeapInuse))/(1<<20), "heap-MiB")
}
