package webapp

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/cursor"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// BenchmarkConsoleTenants renders /console at 100,000 tenants, through the
// whole stack (HTTP, session, Postgres, template), for the first page and
// for a page 90,000 tenants deep reached by its cursor. Keyset pagination
// should make both cost the same: deep/first ≈ 1.
//
//	go test ./internal/webapp/ -run '^$' -bench BenchmarkConsoleTenants -benchtime 200x
func BenchmarkConsoleTenants(b *testing.B) {
	const tenants, depth = 100_000, 90_000
	tb := setup(b)
	pgtest.SeedTenants(b, tb.pool, tenants)
	tb.srv.Echo().GET("/_test/binding", func(c echo.Context) error {
		u, _ := tb.srv.currentUser(c)
		return c.String(http.StatusOK, u.Binding)
	})
	br := tb.browser(b)
	if res, _ := br.signInConsole(operatorUPN); res.StatusCode != http.StatusOK {
		b.Fatalf("operator sign-in: %d", res.StatusCode)
	}
	_, binding := br.get("/_test/binding", false)
	cc := cursor.New("tenantsync console cursor", binding)

	for _, sort := range []postgres.TenantSort{postgres.SortCreated, postgres.SortLastSync, postgres.SortSize} {
		spec := map[postgres.TenantSort]string{
			postgres.SortCreated:  "created_at DESC, id DESC",
			postgres.SortLastSync: "coalesce(last_synced_at, '-infinity'::timestamptz), id",
			postgres.SortSize:     "user_count DESC, id DESC",
		}[sort]
		key := map[postgres.TenantSort]string{
			postgres.SortCreated:  "created_at::text",
			postgres.SortLastSync: "coalesce(last_synced_at, '-infinity'::timestamptz)::text",
			postgres.SortSize:     "user_count::text",
		}[sort]
		var cur postgres.TenantCursor
		cur.Sort = sort
		err := tb.pool.QueryRow(context.Background(),
			"SELECT "+key+", id::text FROM tenants ORDER BY "+spec+" OFFSET $1 LIMIT 1", depth-1).Scan(&cur.Key, &cur.ID)
		if err != nil {
			b.Fatal(err)
		}
		first := "/console/tenants?sort=" + string(sort)
		deep := first + "&after=" + url.QueryEscape(cc.Encode(consoleListing("", "", sort), cur))
		for _, p := range []string{first, deep} {
			if res, body := br.get(p, false); res.StatusCode != http.StatusOK || len(rowIDs(body)) != consolePageSize {
				b.Fatalf("%s: %d, %d rows", p, res.StatusCode, len(rowIDs(body)))
			}
		}
		b.Run(string(sort), func(b *testing.B) {
			var firstT, deepT time.Duration
			for b.Loop() {
				start := time.Now()
				br.get(first, false)
				firstT += time.Since(start)
				start = time.Now()
				br.get(deep, false)
				deepT += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(float64(firstT.Microseconds())/1000/n, "ms/first_page")
			b.ReportMetric(float64(deepT.Microseconds())/1000/n, "ms/deep_page")
			b.ReportMetric(float64(deepT)/float64(firstT), "deep/first")
		})
	}
}

// BenchmarkConsoleOverview renders the fleet overview (/console) at 100,000
// tenants, with 60,000 sync runs in the last 24 hours (three each for a
// fifth of the tenants: failures with AADSTS codes, throttled waits and
// pauses among them) and 2,000 queued jobs, through the whole stack. It
// times the tenant list's first page in the same loop and reports the
// overview's cost as a ratio to it: overview/list.
//
//	go test ./internal/webapp/ -run '^$' -bench BenchmarkConsoleOverview -benchtime 200x
func BenchmarkConsoleOverview(b *testing.B) {
	tb := setup(b)
	benchSeedOverview(b, tb)
	br := tb.browser(b)
	if res, _ := br.signInConsole(operatorUPN); res.StatusCode != http.StatusOK {
		b.Fatalf("operator sign-in: %d", res.StatusCode)
	}
	const overview, list = "/console", "/console/tenants"
	if res, body := br.get(overview, false); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="runs-chart"`) ||
		strings.Count(body, `<tr data-tenant=`) != overviewAttentionLimit+overviewWorstLag {
		b.Fatalf("overview: %d, %d tenant rows: %.300s", res.StatusCode, strings.Count(body, `<tr data-tenant=`), body)
	}
	if res, body := br.get(list, false); res.StatusCode != http.StatusOK || len(rowIDs(body)) != consolePageSize {
		b.Fatalf("list: %d, %d rows", res.StatusCode, len(rowIDs(body)))
	}
	var overviewT, listT time.Duration
	for b.Loop() {
		start := time.Now()
		br.get(overview, false)
		overviewT += time.Since(start)
		start = time.Now()
		br.get(list, false)
		listT += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(overviewT.Microseconds())/1000/n, "ms/overview")
	b.ReportMetric(float64(listT.Microseconds())/1000/n, "ms/list")
	b.ReportMetric(float64(overviewT)/float64(listT), "overview/list")
}

// benchSeedOverview seeds 100,000 tenants, 60,000 sync runs in the last 24
// hours (three each for a fifth of the tenants) and 2,000 queued jobs.
func benchSeedOverview(b *testing.B, tb *testBundle) {
	const tenants = 100_000
	pgtest.SeedTenants(b, tb.pool, tenants)
	ctx := context.Background()
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO sync_runs (tenant_id, kind, started_at, finished_at, outcome, throttled_waits, error, error_code)
SELECT md5('tenant' || i)::uuid, 'delta', s, s + interval '4 seconds',
	(ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','failed','snoozed','abandoned'])[1 + (i + r) % 9],
	CASE WHEN (i + r) % 13 = 0 THEN 2 ELSE 0 END,
	CASE (i + r) % 9 WHEN 6 THEN 'token for tenant: consent_missing' WHEN 7 THEN 'graph: throttled' ELSE '' END,
	CASE (i + r) % 9 WHEN 6 THEN 'AADSTS700016' WHEN 7 THEN 'TooManyRequests' ELSE '' END
FROM generate_series(5, $1, 5) AS i, generate_series(1, 3) AS r,
	LATERAL (SELECT now() - ((i * 7 + r * 401) % 1440) * interval '1 minute' AS s) AS t`, tenants); err != nil {
		b.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO river_job (kind, args, max_attempts, state, scheduled_at)
SELECT (ARRAY['sync_tenant','verify_tenant','purge_tenant'])[1 + i % 3], jsonb_build_object('tenant_id', md5('tenant' || i)::uuid),
	25, (ARRAY['available','scheduled','retryable'])[1 + i % 3]::river_job_state, now() + i * interval '1 second'
FROM generate_series(1, 2000) AS i`); err != nil {
		b.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, "VACUUM ANALYZE sync_runs, river_job, tenants"); err != nil {
		b.Fatal(err)
	}
}
