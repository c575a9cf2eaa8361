package webapp

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// consoleWebhookSamplePages are the webhooks page's views for
// TestRenderEveryPage: a healthy endpoint with deliveries, a disabled one,
// and none at all.
func consoleWebhookSamplePages(now time.Time) []page {
	code, lat := 503, 120*time.Millisecond
	ep := domain.WebhookEndpoint{ID: "7b0c7f55-2d0e-4a51-9b55-0a3f5d3c2e11", URL: "https://hooks.example.com/in", CreatedAt: now}
	d := domain.WebhookDelivery{ID: 1, EndpointID: ep.ID, EventID: "0c1d2e3f-1111-4222-8333-444455556666", TenantID: contosoID,
		EventType: domain.UserDisabled, Status: domain.DeliveryPending, Attempts: 2, LastStatusCode: &code, LastLatency: &lat,
		LastError: "the endpoint answered 503 Service Unavailable", CreatedAt: now}
	off := ep
	off.Disabled, off.DisabledReason = true, "deliveries failed for 120h0m0s"
	return []page{
		&consoleWebhooksView{Layout: Layout{Title: "Webhooks", Notice: consoleWebhookNotices["replayed"]}, Endpoints: []consoleWebhookRow{
			{WebhookEndpoint: ep, Types: "user.disabled", State: "failing", StateClass: "warn",
				Deliveries: []consoleDeliveryRow{{WebhookDelivery: d, StatusClass: "bad", Latency: "120 ms", Code: "503"}}},
			{WebhookEndpoint: off, Types: "every event type", State: "disabled", StateClass: "bad"},
		}},
		&consoleWebhooksView{Layout: Layout{Title: "Webhooks"}},
	}
}

// TestConsoleWebhooks: the operator sees each endpoint with its recent
// deliveries (status, attempts, response, latency, error) and never its
// secret; "replay from here" needs the CSRF token and moves the endpoint's
// feed position back to just before that event.
func TestConsoleWebhooks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	const secret = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3Qtc2hvdy0wMTIz"
	var epID, eventID string
	var seq int64
	if err := tb.pool.QueryRow(ctx, `INSERT INTO webhook_endpoints (url, secret, event_types) VALUES ('https://hooks.example.com/in', $1, '{user.disabled}') RETURNING id::text`,
		secret).Scan(&epID); err != nil {
		t.Fatal(err)
	}
	if err := tb.pool.QueryRow(ctx, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.disabled', '{}') RETURNING id::text, seq`,
		contosoID).Scan(&eventID, &seq); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `
INSERT INTO webhook_deliveries (endpoint_id, event_id, tenant_id, event_type, event_xid, event_seq, attempts, last_status_code, last_error, last_latency_ms)
SELECT $1, id, tenant_id, type, xid, seq, 3, 503, 'the endpoint answered 503 Service Unavailable', 87 FROM change_events WHERE id = $2`, epID, eventID); err != nil {
		t.Fatal(err)
	}
	br := tb.browser(t)
	br.signInConsole(operatorUPN)
	res, body := br.get("/console/webhooks", false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("webhooks page: %d %.300s", res.StatusCode, body)
	}
	for _, want := range []string{
		"<h1>Webhook endpoints</h1>", "<code>https://hooks.example.com/in</code>", `data-endpoint="` + epID + `"`, "user.disabled",
		`data-status="pending"`, `data-label="Attempts" class="num">3<`, `data-label="Response" class="num">503<`, "87 ms",
		"503 Service Unavailable", `name="event_id" value="` + eventID + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("webhooks page lacks %q", want)
		}
	}
	if strings.Contains(body, "whsec_") || strings.Contains(body, strings.TrimPrefix(secret, "whsec_")) {
		t.Error("the webhooks page shows the secret")
	}
	pos := func() int64 {
		var s int64
		if err := tb.pool.QueryRow(ctx, `SELECT pos_seq FROM webhook_endpoints WHERE id = $1`, epID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := pos()
	replay := "/console/webhooks/" + epID + "/replay"
	for _, form := range []url.Values{{"event_id": {eventID}}, {"event_id": {eventID}, "_csrf": {"forged-token"}}} {
		if res, _ := br.post(replay, form, false); res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusBadRequest {
			t.Errorf("replay with CSRF %q: %d, want refused", form.Get("_csrf"), res.StatusCode)
		}
	}
	if pos() != before {
		t.Fatal("a replay without the CSRF token moved the position")
	}
	token := csrfOf(t, body)
	res, _ = br.post(replay, url.Values{"_csrf": {token}, "event_id": {eventID}}, false)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/webhooks" {
		t.Fatalf("replay: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := pos(); got != seq-1 {
		t.Errorf("after replay the position's seq is %d, want %d (just before the event)", got, seq-1)
	}
	if _, body := br.get("/console/webhooks", false); !strings.Contains(body, "Replay queued") {
		t.Error("no notice after the replay")
	}
	if _, body := br.get("/console/webhooks", false); strings.Contains(body, "Replay queued") {
		t.Error("the notice shows again on reload")
	}
	for _, ev := range []string{"0c1d2e3f-1111-4222-8333-444455556666", "not-a-guid"} {
		if res, _ := br.post(replay, url.Values{"_csrf": {token}, "event_id": {ev}}, false); res.StatusCode != http.StatusNotFound {
			t.Errorf("replay from unknown event %q: %d, want 404", ev, res.StatusCode)
		}
	}
}
