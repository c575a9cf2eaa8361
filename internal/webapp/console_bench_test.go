package webapp

import (
	"context"
	"net/http"
	"net/url"
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
		first := "/console?sort=" + string(sort)
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
