package webapp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// BenchmarkConnectCallback measures one successful /connect/callback through
// the whole middleware chain against real Postgres: session load, then one
// transaction holding the state take and the tenant upsert with its event
// (one statement, batched with the tenant's row lock) and River's InsertTx
// of VerifyTenant, and the redirect: five round trips.
// It also measures a bare one-INSERT transaction on the same database and
// reports the ratio (x-bare-insert-tx), so machines compare fairly; both
// have one commit.
// BENCH_ASYNC_COMMIT=1 turns off synchronous_commit on the benchmark's
// database to show the cost without disk flushes.
//
//	TEST_DATABASE_URL=… go test ./internal/webapp -run '^$' -bench ConnectCallback -benchmem
func BenchmarkConnectCallback(b *testing.B) {
	tb := setup(b)
	br := tb.browser(b)
	br.signIn(contosoAdm)
	cookie := sessionCookie(br, tb.base)
	u, _ := tb.srv.currentUserFromToken(b, cookie)
	ctx := context.Background()

	if os.Getenv("BENCH_ASYNC_COMMIT") == "1" {
		// Only this benchmark's own database: shows the cost without the
		// disk flush of each commit.
		if _, err := tb.pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
			b.Fatal(err)
		}
		tb.pool.Reset()
	}
	baseline := bareInsertTx(b, tb)

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		state := randomToken()
		if err := tb.store.ConnectStatePut(ctx, state, u.Binding, tb.clock.Now()); err != nil {
			b.Fatal(err)
		}
		// Let the next VerifyTenant be a real insert, not a unique skip.
		if _, err := tb.pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE state <> 'completed'`); err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/connect/callback?"+successQuery(state, contosoID).Encode(), nil)
		req.AddCookie(&http.Cookie{Name: "tenantsync_session", Value: cookie})
		rec := httptest.NewRecorder()
		b.StartTimer()

		tb.srv.ServeHTTP(rec, req)

		b.StopTimer()
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/tenant?connected=1" {
			b.Fatalf("callback: %d %s", rec.Code, rec.Body.String())
		}
		b.StartTimer()
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(baseline.Nanoseconds()), "bare-tx-ns")
	b.ReportMetric(perOp/float64(baseline.Nanoseconds()), "x-bare-insert-tx")
	var jobs int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'verify_tenant'`).Scan(&jobs); err != nil || jobs < b.N {
		b.Fatalf("verify jobs %d for %d callbacks (%v)", jobs, b.N, err)
	}
}

// bareInsertTx returns the mean time of BEGIN; INSERT; COMMIT on the
// benchmark's database.
func bareInsertTx(b *testing.B, tb *testBundle) time.Duration {
	b.Helper()
	ctx := context.Background()
	if _, err := tb.pool.Exec(ctx, `CREATE TABLE bench_bare (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	const n = 300
	insert := func() {
		tx, err := tb.pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO bench_bare (v) VALUES ($1)`, "x"); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 { // warm the pool
		insert()
	}
	start := time.Now()
	for range n {
		insert()
	}
	return time.Since(start) / n
}

// currentUserFromToken reads the session user stored under token.
func (s *Server) currentUserFromToken(b *testing.B, token string) (SessionUser, bool) {
	b.Helper()
	ctx, err := s.sessions.Load(context.Background(), token)
	if err != nil {
		b.Fatal(err)
	}
	u, ok := s.sessions.Get(ctx, keyUser).(SessionUser)
	if !ok {
		b.Fatal("no user in the session")
	}
	return u, ok
}
