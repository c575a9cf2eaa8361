package graph_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// clock is the one time of the emulator and of every client in a test;
// a client's sleep moves it on, so Retry-After waits take no real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// advanceTo moves the clock to t unless it is already later.
func (c *clock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// process is what one worker process holds: its own token cache, Graph
// client and database pool.
type process struct {
	tokens *entra.TokenSource
	client *graph.Client
	store  *postgres.Store
}

// newProcess builds a process on the emulator and the database at dbURL;
// withGate false builds today's client, which keeps no tenant window.
func newProcess(t *testing.T, srv *entraemu.Server, clk *clock, dbURL string, withGate bool) process {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool)
	app := srv.DefaultApp()
	tokens, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: srv.AuthorityHost, GraphBaseURL: srv.GraphBaseURL,
		ClientID: app.ClientID, Secret: app.Secrets[0].Value, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := graph.Config{BaseURL: srv.GraphBaseURL, HTTPClient: srv.HTTPClient(), Tokens: tokens, Now: clk.Now, Sleep: clk.sleep}
	if withGate {
		cfg.Gate = store
	}
	c, err := graph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return process{tokens: tokens, client: c, store: store}
}

// throttleSetup starts the emulator on clk with Contoso consented in a fresh
// database, and returns the database's URL.
func throttleSetup(t *testing.T, clk *clock) (*entraemu.Server, string) {
	t.Helper()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 5, Now: clk.Now, ThrottleScale: 1000})
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.New(pool).TenantUpsertConsented(context.Background(), entraemu.ContosoTenantID, "admin@contoso.example", "oid-1"); err != nil {
		t.Fatal(err)
	}
	return srv, dbURL
}

// TestThrottleWindowIsTheTenants is issue 11's throttling scenario: two
// jobs of one tenant (a full and a periodic sync), each in its own worker
// process, under 5% of requests answered 429 with Retry-After: 6. The
// jobs run one at a time, as the tenant's sync exclusion runs them, and a
// job that is told to wait snoozes while the other one, already due, goes
// on. Without the gate the other job calls Graph inside the window; the
// case without it shows that the emulator sees that.
func TestThrottleWindowIsTheTenants(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		withGate  bool
		wantEarly bool
	}{
		{name: "shared window", withGate: true},
		{name: "window per job (before issue 11)", withGate: false, wantEarly: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			srv, dbURL := throttleSetup(t, clk)
			tid := entraemu.ContosoTenantID
			srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 0.05, RetryAfter: 6 * time.Second})
			type job struct {
				c     *graph.Client
				due   time.Time
				link  string
				pages int
			}
			jobs := []*job{
				{c: newProcess(t, srv, clk, dbURL, tt.withGate).client},
				{c: newProcess(t, srv, clk, dbURL, tt.withGate).client},
			}
			var p domain.UsersPage
			snoozes := 0
			const pages = 400
			for jobs[0].pages+jobs[1].pages < pages {
				j := jobs[0]
				if o := jobs[1]; o.due.Before(j.due) || (o.due.Equal(j.due) && o.pages < j.pages) {
					j = o
				}
				clk.advanceTo(j.due)
				err := j.c.UsersDelta(context.Background(), tid, j.link, &p)
				var ge *graph.Error
				switch {
				case errors.As(err, &ge) && ge.Kind == graph.ErrThrottled && ge.RetryAfter > 0:
					j.due = clk.Now().Add(ge.RetryAfter)
					snoozes++
				case err != nil:
					t.Fatalf("page %d: %v", j.pages, err)
				default:
					j.pages++
					j.link = p.NextLink
					if p.DeltaLink != "" {
						j.link = p.DeltaLink
					}
				}
			}
			n := srv.Counters(tid)
			t.Logf("%d pages, %d requests, %d answered 429, %d snoozes, %d early", pages, n.GraphRequests, n.Throttled, snoozes, n.EarlyRetries)
			if n.Throttled < 5 {
				t.Fatalf("only %d requests answered 429: the scenario did not throttle", n.Throttled)
			}
			if tt.wantEarly != (n.EarlyRetries > 0) {
				t.Errorf("%d requests sent inside a Retry-After window, want them %s", n.EarlyRetries, map[bool]string{true: "> 0", false: "0"}[tt.wantEarly])
			}
		})
	}
}

// TestThrottleWindowWaitOrSnooze: a window recorded by another process is
// waited out in process when it ends within MaxWait, and otherwise
// returned as throttled with the rest of the window, sending nothing.
// windowOpen is two processes on Contoso, b with a token already, after a
// has recorded a 30 s window that b has not read: b, the clock, the
// emulator, the requests sent so far and the window's start.
func windowOpen(t *testing.T) (b process, clk *clock, srv *entraemu.Server, sent int, start time.Time) {
	t.Helper()
	clk = newClock()
	srv, dbURL := throttleSetup(t, clk)
	tid := entraemu.ContosoTenantID
	a := newProcess(t, srv, clk, dbURL, true)
	b = newProcess(t, srv, clk, dbURL, true)
	if _, _, err := b.client.Organization(context.Background(), tid); err != nil {
		t.Fatal(err)
	}
	sent = srv.Counters(tid).GraphRequests
	start = clk.Now()
	if err := a.store.TenantThrottle(context.Background(), tid, start.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	return b, clk, srv, sent, start
}

func TestThrottleWindowWaitOrSnooze(t *testing.T) {
	t.Parallel()
	b, clk, srv, sent, start := windowOpen(t)
	tid := entraemu.ContosoTenantID
	ctx := context.Background()
	_, _, err := b.client.Organization(ctx, tid)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Kind != graph.ErrThrottled || ge.RetryAfter != 30*time.Second {
		t.Fatalf("inside a 30 s window: %v, want throttled with RetryAfter 30s", err)
	}
	if n := srv.Counters(tid).GraphRequests; n != sent {
		t.Errorf("%d requests sent inside the window", n-sent)
	}

	clk.advanceTo(start.Add(27 * time.Second))
	_, st, err := b.client.Organization(ctx, tid)
	if err != nil {
		t.Fatalf("3 s before the window ends: %v, want a wait and then success", err)
	}
	if st.ThrottledWaits != 1 || st.ThrottledFor != 3*time.Second || !clk.Now().Equal(start.Add(30*time.Second)) {
		t.Errorf("waited %d times for %v, clock at +%v; want once for 3s, at +30s", st.ThrottledWaits, st.ThrottledFor, clk.Now().Sub(start))
	}
	if n := srv.Counters(tid); n.GraphRequests != sent+1 || n.EarlyRetries != 0 {
		t.Errorf("counters %+v, want one more request and no early one", n)
	}
}

// TestRetryAfterBecomesTheTenantsWindow: a 429's Retry-After and a 503's
// are recorded for the tenant; a shorter one later does not shorten it.
func TestRetryAfterBecomesTheTenantsWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv, dbURL := throttleSetup(t, clk)
	tid := entraemu.ContosoTenantID
	proc := newProcess(t, srv, clk, dbURL, true)
	ctx := context.Background()
	// retry.After adds a millisecond so that the end is never a hair early.
	within := func(d, want time.Duration) bool { return d >= want && d <= want+time.Millisecond }
	until := func() time.Duration {
		t.Helper()
		u, err := proc.store.TenantThrottledUntil(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		return u.Sub(clk.Now())
	}
	start := clk.Now()
	srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 1, RetryAfter: 6 * time.Second})
	if _, _, err := proc.client.Organization(ctx, tid); err == nil {
		t.Fatal("429: no error")
	}
	if d := until(); !within(d, 6*time.Second) {
		t.Errorf("after a 429 with Retry-After 6: window %v, want 6s", d)
	}
	clk.advanceTo(start.Add(10 * time.Second))
	srv.SetFaults(tid, entraemu.Faults{ErrorRate: 1, ErrorStatus: 503, RetryAfter: 20 * time.Second})
	if _, _, err := proc.client.Organization(ctx, tid); err == nil {
		t.Fatal("503: no error")
	}
	if d := until(); !within(d, 20*time.Second) {
		t.Errorf("after a 503 with Retry-After 20: window %v, want 20s", d)
	}
	if n := srv.Counters(tid).EarlyRetries; n != 0 {
		t.Errorf("%d early requests", n)
	}
}

// TestKnownThrottleWindow: a window the caller has just read from the gate
// (the worker reads it with the sync's lease) stands in for the gate's read
// before a request for that tenant; after waiting out a short known window
// the gate is read again, and a window known for another tenant is ignored.
func TestKnownThrottleWindow(t *testing.T) {
	t.Parallel()
	b, _, srv, sent, start := windowOpen(t)
	tid := entraemu.ContosoTenantID
	ctx := context.Background()

	// Known closed (read before another process recorded its window): the
	// request goes out without a read of the gate.
	if _, _, err := b.client.Organization(graph.WithThrottleWindow(ctx, tid, time.Time{}), tid); err != nil {
		t.Fatalf("with a closed window known: %v", err)
	}
	if n := srv.Counters(tid).GraphRequests; n != sent+1 {
		t.Fatalf("%d requests sent with a closed window known, want 1", n-sent)
	}

	// Known for another tenant: the gate is read, and the window holds.
	_, _, err := b.client.Organization(graph.WithThrottleWindow(ctx, entraemu.FabrikamTenantID, time.Time{}), tid)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Kind != graph.ErrThrottled || ge.RetryAfter != 30*time.Second {
		t.Fatalf("with another tenant's window known: %v, want throttled with RetryAfter 30s", err)
	}

	// Known open for 3 s more: waited out, then the gate is read again and
	// its longer window sends the job away without a request.
	_, st, err := b.client.Organization(graph.WithThrottleWindow(ctx, tid, start.Add(3*time.Second)), tid)
	if !errors.As(err, &ge) || ge.Kind != graph.ErrThrottled || ge.RetryAfter != 27*time.Second {
		t.Fatalf("with a 3 s window known: %v, want throttled with RetryAfter 27s", err)
	}
	if st.ThrottledWaits != 1 || st.ThrottledFor != 3*time.Second {
		t.Errorf("waited %d times for %v, want once for 3s", st.ThrottledWaits, st.ThrottledFor)
	}
	if n := srv.Counters(tid).GraphRequests; n != sent+1 {
		t.Errorf("%d requests sent in all, want 1", n-sent)
	}
}
