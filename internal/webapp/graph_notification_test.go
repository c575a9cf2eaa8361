package webapp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// testSubscription is a graph_subscriptions row a test stored itself: the
// hostile and edge inputs of these tests need no Graph behind them.
type testSubscription struct {
	ID, TenantID, Resource, ClientState string
}

// addSubscription stores a subscription of tenant for resource with a
// random ID and clientState, its hash as the worker stores it.
func addSubscription(t testing.TB, pool *pgxpool.Pool, tenant, resource string) testSubscription {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s := testSubscription{ID: uuid.NewString(), TenantID: tenant, Resource: resource, ClientState: hex.EncodeToString(secret)}
	sum := sha256.Sum256([]byte(s.ClientState))
	if _, err := pool.Exec(context.Background(), `INSERT INTO graph_subscriptions (id, tenant_id, resource, client_state_hash, expires_at)
		VALUES ($1, $2, $3, $4, now() + interval '2 days')`, s.ID, s.TenantID, s.Resource, sum[:]); err != nil {
		t.Fatal(err)
	}
	return s
}

// subscribedTenant stores an active tenant with users and groups
// subscriptions.
func subscribedTenant(t testing.TB, pool *pgxpool.Pool, name string) (users, groups testSubscription) {
	t.Helper()
	id := uuid.NewString()
	insertTenants(t, pool, consoleTenant{ID: id, Name: name, Domains: []string{strings.ToLower(name) + ".example"}})
	return addSubscription(t, pool, id, "users"), addSubscription(t, pool, id, "groups")
}

// changeNotification is one notification as Graph sends it for users
// (docs/protocol.md §7).
func changeNotification(s testSubscription) map[string]any {
	user := uuid.NewString()
	return map[string]any{
		"subscriptionId": s.ID, "subscriptionExpirationDateTime": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"changeType": "updated", "resource": "Users/" + user, "clientState": s.ClientState, "tenantId": s.TenantID,
		"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.User", "@odata.id": "Users/" + user, "id": user,
			"organizationId": s.TenantID},
	}
}

// lifecycleNotification is one lifecycle notification for s.
func lifecycleNotification(s testSubscription, event string) map[string]any {
	return map[string]any{"subscriptionId": s.ID, "subscriptionExpirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"tenantId": s.TenantID, "clientState": s.ClientState, "lifecycleEvent": event}
}

// postGraph POSTs body to path as Graph does and returns the status.
func postGraph(t testing.TB, base, path string, body io.Reader) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// postBatch POSTs notifications as one batch and returns the status.
func postBatch(t testing.TB, base, path string, ns ...map[string]any) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{"value": ns})
	if err != nil {
		t.Fatal(err)
	}
	return postGraph(t, base, path, strings.NewReader(string(body)))
}

// notificationCounts reads tenantsync_graph_notifications_total from
// /metrics, by "endpoint/result".
func notificationCounts(t testing.TB, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `tenantsync_graph_notifications_total{endpoint="`)
		if !ok {
			continue
		}
		ep, rest, _ := strings.Cut(rest, `",result="`)
		result, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[ep+"/"+result] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// notificationState is what a notification may change: the tenant's
// tenant_notifications row and its queued jobs.
type notificationState struct {
	Notified      bool
	Notifications int64
	SyncJobs      int
	EnsureJobs    int
	Reauthorize   int
}

func notificationStateOf(t testing.TB, pool *pgxpool.Pool, tenant string) notificationState {
	t.Helper()
	var st notificationState
	err := pool.QueryRow(context.Background(), `SELECT
		coalesce((SELECT notified_at IS NOT NULL FROM tenant_notifications WHERE tenant_id = $1), false),
		coalesce((SELECT notifications FROM tenant_notifications WHERE tenant_id = $1), 0),
		(SELECT count(*) FROM river_job WHERE kind = 'sync_tenant' AND args @> jsonb_build_object('tenant_id', $1::text)),
		(SELECT count(*) FROM river_job WHERE kind = 'ensure_subscriptions' AND args @> jsonb_build_object('tenant_id', $1::text)),
		(SELECT count(*) FROM river_job WHERE kind = 'ensure_subscriptions'
			AND args @> jsonb_build_object('tenant_id', $1::text, 'reauthorize', true))`, tenant).
		Scan(&st.Notified, &st.Notifications, &st.SyncJobs, &st.EnsureJobs, &st.Reauthorize)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Graph validates both URLs by POSTing a token that must come back as the
// body, as plain text (docs/protocol.md §7). A token that looks like HTML
// stays text, and no session cookie is set.
func TestGraphValidationHandshake(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, path := range []string{"/graph/notifications", "/graph/lifecycle"} {
		for _, token := range []string{
			"Validation: Testing client application reachability for subscription Request-Id: 4b2a6c1e-0000-4000-8000-000000000001",
			`<html><script>alert(1)</script></html>`,
			"a+b c&d=e%f",
		} {
			res, err := http.Post(tb.base+path+"?validationToken="+url.QueryEscape(token), "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != token {
				t.Errorf("%s %q: %d %q, want 200 and the token", path, token, res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("%s: Content-Type %q, want text/plain; charset=utf-8", path, ct)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", path)
			}
			if c := res.Header.Get("Set-Cookie"); c != "" {
				t.Errorf("%s: a cookie was set: %q", path, c)
			}
		}
		res, err := http.Post(tb.base+path+"?validationToken="+strings.Repeat("x", maxValidationToken+1), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: an overlong token got %d, want 400", path, res.StatusCode)
		}
	}
	got := notificationCounts(t, tb.base)
	for _, key := range []string{"notifications/validation", "lifecycle/validation"} {
		if got[key] != 3 {
			t.Errorf("%s counted %v, want 3", key, got[key])
		}
	}
}

// A batch of valid notifications for several tenants sets each tenant's
// notified_at and queues one sync job per tenant, however many
// notifications it had.
func TestGraphNotificationsQueueOneSyncPerTenant(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var batch []map[string]any
	var tenants []string
	for _, name := range []string{"Alpha", "Beta", "Gamma"} {
		users, groups := subscribedTenant(t, tb.pool, name)
		tenants = append(tenants, users.TenantID)
		batch = append(batch, changeNotification(users), changeNotification(groups), changeNotification(users))
	}
	idle, _ := subscribedTenant(t, tb.pool, "Idle")
	if code := postBatch(t, tb.base, "/graph/notifications", batch...); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	for _, id := range tenants {
		if got, want := notificationStateOf(t, tb.pool, id), (notificationState{Notified: true, Notifications: 3, SyncJobs: 1}); got != want {
			t.Errorf("tenant %s: %+v, want %+v", id, got, want)
		}
	}
	if got := notificationStateOf(t, tb.pool, idle.TenantID); got != (notificationState{}) {
		t.Errorf("a tenant without notifications changed: %+v", got)
	}
	if got := notificationCounts(t, tb.base)["notifications/accepted"]; got != 9 {
		t.Errorf("accepted counted %v, want 9", got)
	}
}

// 10,000 notifications for one tenant, in a few POSTs, make one queued
// sync job: the job is unique per tenant while queued.
func TestGraphNotificationBurstQueuesOneJob(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	users, groups := subscribedTenant(t, tb.pool, "Burst")
	const posts, per = 5, 2000
	for range posts {
		batch := make([]map[string]any, 0, per)
		for i := range per {
			s := users
			if i%2 == 1 {
				s = groups
			}
			batch = append(batch, changeNotification(s))
		}
		if code := postBatch(t, tb.base, "/graph/notifications", batch...); code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
	}
	want := notificationState{Notified: true, Notifications: posts * per, SyncJobs: 1}
	if got := notificationStateOf(t, tb.pool, users.TenantID); got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
}

// Notifications that fail a check, and bodies that are no notifications,
// change nothing and are counted; the clientState sent never reaches the
// log.
func TestGraphNotificationsRefused(t *testing.T) {
	t.Parallel()
	var log logBuffer
	tb := setup(t, logTo(&log))
	users, _ := subscribedTenant(t, tb.pool, "Victim")
	other, _ := subscribedTenant(t, tb.pool, "Other")
	const forged = "forged-client-state-0123456789"
	with := func(f func(n map[string]any)) map[string]any {
		n := changeNotification(users)
		f(n)
		return n
	}
	huge := `{"value":[` + strings.Repeat(`{"subscriptionId":"x"},`, graphBodyLimit/20) + `{}]}`
	tests := []struct {
		name   string
		body   func() io.Reader
		status int
		result string
	}{
		{"unknown subscription", batchOf(with(func(n map[string]any) { n["subscriptionId"] = uuid.NewString() })), 202, "unknown_subscription"},
		{"no subscription", batchOf(with(func(n map[string]any) { delete(n, "subscriptionId") })), 202, "unknown_subscription"},
		{"wrong clientState", batchOf(with(func(n map[string]any) { n["clientState"] = forged })), 202, "bad_client_state"},
		{"no clientState", batchOf(with(func(n map[string]any) { delete(n, "clientState") })), 202, "bad_client_state"},
		{"another served tenant", batchOf(with(func(n map[string]any) { n["tenantId"] = other.TenantID })), 202, "tenant_mismatch"},
		{"a tenant not served", batchOf(with(func(n map[string]any) { n["tenantId"] = uuid.NewString() })), 202, "tenant_mismatch"},
		{"another tenant's subscription", batchOf(with(func(n map[string]any) {
			n["subscriptionId"], n["clientState"] = other.ID, forged
		})), 202, "bad_client_state"},
		{"malformed JSON", rawBody(`{"value":[{"subscriptionId":`), 202, "malformed"},
		{"no value", rawBody(`{"value":[]}`), 202, "malformed"},
		{"not an object", rawBody(`[1,2,3]`), 202, "malformed"},
		{"empty body", rawBody(``), 202, "malformed"},
		{"oversized, length declared", rawBody(huge), 413, "too_large"},
		{"oversized, chunked", func() io.Reader { return io.MultiReader(strings.NewReader(huge)) }, 413, "too_large"},
	}
	for _, tt := range tests {
		before := notificationCounts(t, tb.base)["notifications/"+tt.result]
		if code := postGraph(t, tb.base, "/graph/notifications", tt.body()); code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.status)
		}
		for _, id := range []string{users.TenantID, other.TenantID} {
			if got := notificationStateOf(t, tb.pool, id); got != (notificationState{}) {
				t.Errorf("%s: tenant %s changed: %+v", tt.name, id, got)
			}
		}
		if after := notificationCounts(t, tb.base)["notifications/"+tt.result]; after != before+1 {
			t.Errorf("%s: %s counted %v → %v, want one more", tt.name, tt.result, before, after)
		}
	}
	// The same checks guard the lifecycle URL.
	forgedLifecycle := lifecycleNotification(users, lifecycleReauthorize)
	forgedLifecycle["clientState"] = forged
	if code := postBatch(t, tb.base, "/graph/lifecycle", forgedLifecycle); code != http.StatusAccepted {
		t.Errorf("forged lifecycle: status %d, want 202", code)
	}
	if got := notificationStateOf(t, tb.pool, users.TenantID); got != (notificationState{}) {
		t.Errorf("forged lifecycle changed the tenant: %+v", got)
	}
	if got := notificationCounts(t, tb.base)["lifecycle/bad_client_state"]; got != 1 {
		t.Errorf("lifecycle/bad_client_state counted %v, want 1", got)
	}
	if strings.Contains(log.String(), forged) || strings.Contains(log.String(), users.ClientState) {
		t.Error("a clientState reached the log")
	}
	if !strings.Contains(log.String(), "graph notifications dropped") {
		t.Error("dropped notifications were not logged")
	}
}

func batchOf(ns ...map[string]any) func() io.Reader {
	return func() io.Reader {
		b, _ := json.Marshal(map[string]any{"value": ns})
		return strings.NewReader(string(b))
	}
}

func rawBody(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

// reauthorizationRequired queues one ensure_subscriptions job with
// Reauthorize set per tenant; other lifecycle events are counted and
// ignored (docs/protocol.md §7).
func TestGraphLifecycle(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	users, groups := subscribedTenant(t, tb.pool, "Renew")
	quiet, _ := subscribedTenant(t, tb.pool, "Quiet")
	code := postBatch(t, tb.base, "/graph/lifecycle", lifecycleNotification(users, lifecycleReauthorize),
		lifecycleNotification(groups, lifecycleReauthorize), lifecycleNotification(quiet, "subscriptionRemoved"),
		lifecycleNotification(quiet, "missed"))
	if code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	if got, want := notificationStateOf(t, tb.pool, users.TenantID), (notificationState{EnsureJobs: 1, Reauthorize: 1}); got != want {
		t.Errorf("reauthorized tenant: %+v, want %+v", got, want)
	}
	if got := notificationStateOf(t, tb.pool, quiet.TenantID); got != (notificationState{}) {
		t.Errorf("ignored events changed the tenant: %+v", got)
	}
	got := notificationCounts(t, tb.base)
	if got["lifecycle/reauthorize"] != 2 || got["lifecycle/ignored"] != 2 {
		t.Errorf("counts %v, want 2 reauthorize and 2 ignored", got)
	}
}

// When the database fails or hangs, the answer is still 202 (the periodic
// round is the safety net), the failure is counted, and a transaction cut
// short by the time bound leaves nothing behind.
func TestGraphNotificationsDatabaseTrouble(t *testing.T) {
	t.Parallel()
	var log logBuffer
	tb := setup(t, logTo(&log))
	users, _ := subscribedTenant(t, tb.pool, "Slow")
	ctx := context.Background()

	// Hung: a lock held elsewhere blocks the update until the bound.
	tx, err := tb.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE tenant_notifications IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	code := postBatch(t, tb.base, "/graph/notifications", changeNotification(users))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusAccepted {
		t.Errorf("hung database: status %d, want 202", code)
	}
	if got := notificationStateOf(t, tb.pool, users.TenantID); got != (notificationState{}) {
		t.Errorf("an abandoned transaction left %+v", got)
	}
	if got := notificationCounts(t, tb.base)["notifications/error"]; got != 1 {
		t.Errorf("error counted %v, want 1", got)
	}

	// Down: the database refuses every connection.
	var db string
	if err := tb.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	admin, err := pgxpool.New(ctx, pgtest.Server(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+quoteIdent(db)+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(ctx, `ALTER DATABASE `+quoteIdent(db)+` ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	if code := postBatch(t, tb.base, "/graph/notifications", changeNotification(users)); code != http.StatusAccepted {
		t.Errorf("database down: status %d, want 202", code)
	}
	if got := notificationCounts(t, tb.base)["notifications/error"]; got != 2 {
		t.Errorf("error counted %v, want 2", got)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+quoteIdent(db)+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "the periodic sync will catch up") {
		t.Error("the lost notifications were not logged")
	}
	if strings.Contains(log.String(), users.ClientState) {
		t.Error("a clientState reached the log")
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
