package entra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

// tokenTenants starts an emulator with n consented tenants and returns it
// with their IDs.
func tokenTenants(tb testing.TB, n int) (*entraemu.Server, []string) {
	tb.Helper()
	seed := entraemu.SmallSeed()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "msal-cache-tenant-%d", i)).String()
		seed.Tenants = append(seed.Tenants, entraemu.Tenant{ID: ids[i], DisplayName: fmt.Sprintf("T%05d", i), Consented: true})
	}
	return entraemu.StartTest(tb, entraemu.Config{Seed: seed, ThrottleScale: 1e6}), ids
}

func tokenSourceFor(tb testing.TB, srv *entraemu.Server, keepMSALCache bool) *TokenSource {
	tb.Helper()
	app := srv.DefaultApp()
	s, err := newTokenSource(TokenConfig{AuthorityHost: srv.AuthorityHost, GraphBaseURL: srv.GraphBaseURL,
		ClientID: app.ClientID, Secret: app.Secrets[0].Value, HTTPClient: srv.HTTPClient()}, keepMSALCache)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestMSALKeepsNoTokens: TokenSource's map is the only token cache. With
// its entry gone (and no bypass asked for), the next token is a new request
// to Entra; MSAL, left to its default, would have answered from its own
// copy, which the same steps show.
func TestMSALKeepsNoTokens(t *testing.T) {
	t.Parallel()
	srv, ids := tokenTenants(t, 1)
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		s := tokenSourceFor(t, srv, keep)
		before := srv.Counters("").TokenRequests
		if _, err := s.Token(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		delete(s.cache, ids[0])
		s.mu.Unlock()
		if _, err := s.Token(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		want := map[bool]int{false: 2, true: 1}[keep]
		if got := srv.Counters("").TokenRequests - before; got != want {
			t.Errorf("MSAL cache kept %t: %d token requests for two calls with the map's entry dropped between, want %d", keep, got, want)
		}
	}
}

// BenchmarkFirstTokens20k acquires the first token of each of 20,000
// tenants, one after another, with MSAL's own cache kept (its default) and
// kept empty (forgetfulCache), alternating, and reports the time per token
// over the last 2,000 tenants in each, and their ratio: MSAL scans every
// token it holds on each lookup, so with its cache the last tokens cost
// more than the first.
func BenchmarkFirstTokens20k(b *testing.B) {
	const n, tail = 20_000, 2_000
	srv, ids := tokenTenants(b, n)
	ctx := context.Background()
	var lastKept, lastForgetful, firstKept, firstForgetful time.Duration
	for range b.N {
		for _, keep := range []bool{true, false} {
			s := tokenSourceFor(b, srv, keep)
			var first, last time.Duration
			for i, id := range ids {
				t0 := time.Now()
				if _, err := s.Token(ctx, id); err != nil {
					b.Fatal(err)
				}
				d := time.Since(t0)
				if i < tail {
					first += d
				}
				if i >= n-tail {
					last += d
				}
			}
			if keep {
				firstKept += first
				lastKept += last
			} else {
				firstForgetful += first
				lastForgetful += last
			}
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*tail) }
	b.ReportMetric(per(firstKept), "µs/token-first2k-msal-cache")
	b.ReportMetric(per(lastKept), "µs/token-last2k-msal-cache")
	b.ReportMetric(per(firstForgetful), "µs/token-first2k-no-msal-cache")
	b.ReportMetric(per(lastForgetful), "µs/token-last2k-no-msal-cache")
	b.ReportMetric(float64(lastForgetful)/float64(lastKept), "last2k-no-cache/cache")
}
