package entra

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkTokenCacheHit100k measures the hit path with 100,000 tenants
// cached (MSAL's own cache scans every entry: 148 µs at 5,000, docs/libraries.md §1).
func BenchmarkTokenCacheHit100k(b *testing.B) {
	s := &TokenSource{now: time.Now, cache: map[string]Token{}, bypass: map[string]bool{}}
	ids := make([]string, 100_000)
	exp := time.Now().Add(time.Hour)
	for i := range ids {
		ids[i] = uuid.NewString()
		s.cache[ids[i]] = Token{Value: "t", ExpiresOn: exp}
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Token(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokens10kTenantsThreeSyncs asks for a token of each of 10,000
// tenants three times (as three sync rounds within a token lifetime would),
// the first round from two goroutines per tenant at once, and reports the
// token requests the emulator saw: exactly one per tenant.
func BenchmarkTokens10kTenantsThreeSyncs(b *testing.B) {
	const n = 10_000
	srv, ids := tokenTenants(b, n)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := srv.Counters("").TokenRequests
		s := tokenSourceFor(b, srv, false)
		b.StartTimer()
		for round := range 3 {
			work := make(chan string)
			var wg sync.WaitGroup
			var errOnce sync.Once
			var firstErr error
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for id := range work {
						if _, err := s.Token(ctx, id); err != nil {
							errOnce.Do(func() { firstErr = err })
						}
					}
				}()
			}
			for _, id := range ids {
				work <- id
				if round == 0 {
					work <- id // a concurrent second caller shares the request
				}
			}
			close(work)
			wg.Wait()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
		}
		b.StopTimer()
		got := srv.Counters("").TokenRequests - before
		b.ReportMetric(float64(got), "token-requests")
		if got != n {
			b.Errorf("%d token requests for %d tenants × 3 syncs, want exactly %d", got, n, n)
		}
		b.StartTimer()
	}
}
