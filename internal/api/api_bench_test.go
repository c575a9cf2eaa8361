package api_test

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// benchGet fetches path with the token and returns the next cursor.
func benchGet(b *testing.B, base, path string) string {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
	}
	var p struct {
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		b.Fatal(err)
	}
	if p.NextCursor == nil {
		return ""
	}
	return *p.NextCursor
}

// deepVsFirst reports ms per page for a page deep in a listing, reached by
// its cursor, and its ratio to the first page measured in the same run.
func deepVsFirst(b *testing.B, base, first, deep string) {
	var deepTook, firstTook time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		benchGet(b, base, deep)
		deepTook += time.Since(t0)
		b.StopTimer()
		t0 = time.Now()
		benchGet(b, base, first)
		firstTook += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(deepTook.Microseconds())/float64(b.N)/1000, "ms/deep_page")
	b.ReportMetric(float64(deepTook)/float64(firstTook), "deep/first")
}

// BenchmarkAPIUsers100k reads a page of 100 users 90,000 deep in a
// 100,000-user tenant through HTTP, JSON and the cursor check.
func BenchmarkAPIUsers100k(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	tid := "8d0c6b9e-1f7a-4c55-9e1d-3b2a1c0d9e8f"
	if _, err := bd.pool.Exec(ctx, `INSERT INTO tenants (id, status, display_name) VALUES ($1, 'active', 'Bench')`, tid); err != nil {
		b.Fatal(err)
	}
	if _, err := bd.pool.Exec(ctx, `INSERT INTO directory_users (tenant_id, id, display_name, user_principal_name, mail)
		SELECT $1::uuid, md5($1::text || i)::uuid, 'User ' || i, 'user' || i || '@bench.example', 'user' || i || '@bench.example'
		FROM generate_series(1, 100000) i`, tid); err != nil {
		b.Fatal(err)
	}
	if _, err := bd.pool.Exec(ctx, `VACUUM ANALYZE directory_users`); err != nil {
		b.Fatal(err)
	}
	first := "/api/v1/tenants/" + tid + "/users?limit=100"
	cur := ""
	for range 90 { // 90 pages of 1,000
		path := "/api/v1/tenants/" + tid + "/users?limit=1000"
		if cur != "" {
			path += "&cursor=" + url.QueryEscape(cur)
		}
		cur = benchGet(b, bd.srv.URL, path)
	}
	deepVsFirst(b, bd.srv.URL, first, first+"&cursor="+url.QueryEscape(cur))
}

// BenchmarkAPITenants100k reads a page of 50 tenants 90,000 deep in
// 100,000 tenants, sorted by last sync, through HTTP.
func BenchmarkAPITenants100k(b *testing.B) {
	bd := setup(b)
	pgtest.SeedTenants(b, bd.pool, 100_000)
	first := "/api/v1/tenants?sort=last_sync&limit=50"
	cur := ""
	for range 180 { // 180 pages of 500
		path := "/api/v1/tenants?sort=last_sync&limit=500"
		if cur != "" {
			path += "&cursor=" + url.QueryEscape(cur)
		}
		cur = benchGet(b, bd.srv.URL, path)
	}
	// A cursor belongs to its listing (query, status, order), not its limit.
	deepVsFirst(b, bd.srv.URL, first, first+"&cursor="+url.QueryEscape(cur))
}

// BenchmarkAPIEvents1M reads pages of 100 events of a feed of 1,000,000
// (100 transactions of 10,000, over 1,000 tenants) through HTTP, JSON and
// the cursor check: deep in the feed unfiltered, and one tenant's page
// (docs/events.md; target under 10 ms a page).
func BenchmarkAPIEvents1M(b *testing.B) {
	benchEvents(b, func(ctx context.Context, bd *bundle) {
		for tx := range 100 {
			if _, err := bd.pool.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data)
				SELECT md5('tenant' || (i % 1000))::uuid, (ARRAY['user.created', 'user.updated', 'group.member_added'])[i % 3 + 1],
					jsonb_build_object('id', md5('user' || i)::uuid, 'user_principal_name', 'user' || i || '@bench.example',
						'display_name', 'User ' || i, 'given_name', 'User', 'surname', i::text, 'mail', 'user' || i || '@bench.example',
						'job_title', '', 'account_enabled', true)
				FROM generate_series($1::int, $1::int + 9999) i`, tx*10_000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAPIEvents1MBatched is BenchmarkAPIEvents1M over the creation
// events of first syncs: 1,000 tenants of 1,024 users, each tenant's events
// in 8 batch rows of 128 as a bulk page writes them
// (migrations/00096_change_event_batches.sql), so pages are cut out of
// batch rows.
func BenchmarkAPIEvents1MBatched(b *testing.B) {
	benchEvents(b, func(ctx context.Context, bd *bundle) {
		for tx := range 10 {
			if _, err := bd.pool.Exec(ctx, `INSERT INTO change_events (id, tenant_id, type, n, batch)
				SELECT NULL, md5('tenant' || t)::uuid, 'user.created', 128, (
					SELECT json_agg(json_build_object('id', md5('user' || t || '/' || i)::uuid,
						'user_principal_name', 'user' || i || '@bench.example', 'display_name', 'User ' || i, 'given_name', 'User',
						'surname', i::text, 'mail', 'user' || i || '@bench.example', 'job_title', '', 'account_enabled', true))
					FROM generate_series(r * 128, r * 128 + 127) i)
				FROM generate_series($1::int, $1::int + 99) t, generate_series(0, 7) r
				ORDER BY t, r`, tx*100); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchEvents seeds about 1,000,000 events over 1,000 tenants with seed, then
// times a page of 100 deep in the feed and the first page of one tenant.
func benchEvents(b *testing.B, seed func(context.Context, *bundle)) {
	bd := setup(b)
	ctx := context.Background()
	seed(ctx, bd)
	if _, err := bd.pool.Exec(ctx, `VACUUM ANALYZE change_events`); err != nil {
		b.Fatal(err)
	}
	cur := ""
	for range 900 { // 900 pages of 1,000
		path := "/api/v1/events?limit=1000"
		if cur != "" {
			path += "&after=" + url.QueryEscape(cur)
		}
		cur = benchGet(b, bd.srv.URL, path)
	}
	// Half a page on, so that a page of batch rows starts inside one.
	cur = benchGet(b, bd.srv.URL, "/api/v1/events?limit=550&after="+url.QueryEscape(cur))
	tenant := "/api/v1/events?limit=100&tenant_id=" + uuidOfMD5("tenant7")
	var deep, oneTenant time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		benchGet(b, bd.srv.URL, "/api/v1/events?limit=100&after="+url.QueryEscape(cur))
		deep += time.Since(t0)
		b.StopTimer()
		t0 = time.Now()
		benchGet(b, bd.srv.URL, tenant)
		oneTenant += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(deep.Microseconds())/float64(b.N)/1000, "ms/deep_page")
	b.ReportMetric(float64(oneTenant.Microseconds())/float64(b.N)/1000, "ms/tenant_page")
}

// uuidOfMD5 is Postgres's md5(s)::uuid.
func uuidOfMD5(s string) string {
	h := fmt.Sprintf("%x", md5.Sum([]byte(s)))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
