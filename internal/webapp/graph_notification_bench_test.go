package webapp

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// benchTenants is how many subscribed tenants BenchmarkNotificationFanIn
// changes at once.
const benchTenants = 1000

// benchTenant is one tenant of the benchmark with the one user it changes.
type benchTenant struct{ ID, UserID, UPN string }

// BenchmarkNotificationFanIn: 1,000 tenants subscribed through the real
// worker and emulator; one user changes in each at once. It reports the
// change-to-row latency (p50, p95, p99 over every tenant and iteration),
// the delta rounds run per tenant (coalescing: 1 is ideal), notifications
// the server failed to record (0 is required), and, as the
// baseline measured in the same run, the same changes picked up by sync
// jobs enqueued directly the moment they were made, with the
// notification path switched off; "p50-x-baseline" is their ratio, what
// the path from Graph to the queue costs.
//
//	go test -run '^$' -bench NotificationFanIn -benchtime 1x ./internal/webapp/
func BenchmarkNotificationFanIn(b *testing.B) {
	tenants := make([]benchTenant, benchTenants)
	tb := setup(b, func(o *setupOpts) {
		o.emu = func(c *entraemu.Config) {
			for i := range tenants {
				tenants[i] = benchTenant{ID: uuid.NewString(), UserID: uuid.NewString(), UPN: fmt.Sprintf("u@t%d.example", i)}
				c.Seed.Tenants = append(c.Seed.Tenants, entraemu.Tenant{ID: tenants[i].ID, DisplayName: fmt.Sprintf("Bench %d", i),
					Domains: []string{fmt.Sprintf("t%d.example", i)}, Consented: true,
					Users: []entraemu.User{{ID: tenants[i].UserID, UserPrincipalName: tenants[i].UPN, DisplayName: "start", AccountEnabled: true}}})
			}
		}
	})
	ctx := context.Background()
	notifyingWorker(b, tb, 8, func(d *jobs.Deps) { d.SubscriptionWrites = rate.NewLimiter(rate.Inf, 1) })
	jobsClient, err := queue.NewInserter(tb.pool)
	if err != nil {
		b.Fatal(err)
	}
	// Active, then a first full round each, which subscribes the tenant.
	first := make([]river.InsertManyParams, len(tenants))
	for i, tn := range tenants {
		pgtest.ActiveTenant(b, tb.store, tn.ID)
		first[i] = river.InsertManyParams{Args: queue.SyncTenantArgs{TenantID: tn.ID}}
	}
	if _, err := jobsClient.InsertMany(ctx, first); err != nil {
		b.Fatal(err)
	}
	setupTime := eventually(b, "every tenant subscribed", 10*time.Minute, func() bool {
		var n int
		err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM tenant_notifications WHERE state = 'subscribed'`).Scan(&n)
		return err == nil && n == len(tenants)
	})
	waitQueueDrained(b, tb)
	b.Logf("%d tenants synced and subscribed in %v", len(tenants), setupTime.Round(time.Second))

	var viaNotify, viaQueue []time.Duration
	var rounds int
	b.ResetTimer()
	for i := range b.N {
		lat, r := fanInRound(b, tb, tenants, fmt.Sprintf("notified-%d", i), nil)
		viaNotify = append(viaNotify, lat...)
		rounds += r

		// The baseline: the server forgets the subscriptions, so their
		// notifications are refused, and the rounds are enqueued directly.
		mustExec(b, tb, `CREATE TABLE IF NOT EXISTS saved_subs (LIKE graph_subscriptions)`)
		mustExec(b, tb, `INSERT INTO saved_subs SELECT * FROM graph_subscriptions`)
		mustExec(b, tb, `DELETE FROM graph_subscriptions`)
		lat, _ = fanInRound(b, tb, tenants, fmt.Sprintf("queued-%d", i), func() {
			if _, err := jobsClient.InsertMany(ctx, first); err != nil {
				b.Fatal(err)
			}
		})
		viaQueue = append(viaQueue, lat...)
		mustExec(b, tb, `INSERT INTO graph_subscriptions SELECT * FROM saved_subs`)
		mustExec(b, tb, `DELETE FROM saved_subs`)
	}
	b.StopTimer()
	p := func(ds []time.Duration, q float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(q*float64(len(s))))].Seconds()
	}
	b.ReportMetric(p(viaNotify, 0.50), "p50-s")
	b.ReportMetric(p(viaNotify, 0.95), "p95-s")
	b.ReportMetric(p(viaNotify, 0.99), "p99-s")
	b.ReportMetric(p(viaQueue, 0.50), "baseline-p50-s")
	b.ReportMetric(p(viaQueue, 0.99), "baseline-p99-s")
	b.ReportMetric(p(viaNotify, 0.50)/p(viaQueue, 0.50), "p50-x-baseline")
	b.ReportMetric(float64(rounds)/float64(b.N*len(tenants)), "delta-rounds/tenant")
	// Notifications the server could not record in time (its 2-second
	// bound): their changes wait for the periodic round.
	b.ReportMetric(notificationCounts(b, tb.base)["notifications/error"], "unrecorded")
}

func mustExec(b *testing.B, tb *testBundle, sql string) {
	b.Helper()
	if _, err := tb.pool.Exec(context.Background(), sql); err != nil {
		b.Fatal(err)
	}
}

// fanInRound changes each tenant's user to name at once (then calls
// after, if set) and returns, per tenant, the time from its change to the
// first poll that saw the row, with the delta rounds started meanwhile.
func fanInRound(b *testing.B, tb *testBundle, tenants []benchTenant, name string, after func()) ([]time.Duration, int) {
	b.Helper()
	ctx := context.Background()
	var since time.Time
	if err := tb.pool.QueryRow(ctx, `SELECT now()`).Scan(&since); err != nil {
		b.Fatal(err)
	}
	changed := make(map[string]time.Time, len(tenants))
	for _, tn := range tenants {
		if err := tb.emu.UpdateUser(tn.ID, entraemu.User{ID: tn.UserID, UserPrincipalName: tn.UPN, DisplayName: name, AccountEnabled: true}); err != nil {
			b.Fatal(err)
		}
		changed[tn.ID] = time.Now()
	}
	if after != nil {
		after()
	}
	var out []time.Duration
	eventually(b, name+" in every copy", 10*time.Minute, func() bool {
		rows, err := tb.pool.Query(ctx, `SELECT tenant_id::text FROM directory_users WHERE display_name = $1`, name)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		var id string
		for rows.Next() {
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			if at, ok := changed[id]; ok {
				out = append(out, now.Sub(at))
				delete(changed, id)
			}
		}
		rows.Close()
		return len(changed) == 0
	})
	// Rounds still running may add a last one.
	waitQueueDrained(b, tb)
	var rounds int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE kind = 'delta' AND started_at >= $1`, since).Scan(&rounds); err != nil {
		b.Fatal(err)
	}
	return out, rounds
}

// waitQueueDrained waits until no sync job is queued or running (periodic
// rounds scheduled far ahead aside).
func waitQueueDrained(b *testing.B, tb *testBundle) {
	b.Helper()
	eventually(b, "sync queue drained", 5*time.Minute, func() bool {
		var n int
		err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind IN ('sync_tenant', 'ensure_subscriptions')
			AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending') AND scheduled_at < now() + interval '1 minute'`).Scan(&n)
		return err == nil && n == 0
	})
}
