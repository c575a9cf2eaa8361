package webapp

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserConsoleWebhooks: in a real browser, the operator opens the
// webhooks page from the console, sees a failing delivery with its
// figures, the page passes the WCAG A/AA audit, and "Replay from here"
// posts (with the page's CSRF token) and comes back with its notice.
func TestBrowserConsoleWebhooks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)
	bg := context.Background()
	var epID, eventID string
	if err := tb.pool.QueryRow(bg, `INSERT INTO webhook_endpoints (url, secret, description) VALUES ('https://hooks.example.com/in', 'whsec_AAAA', 'HR system') RETURNING id::text`).Scan(&epID); err != nil {
		t.Fatal(err)
	}
	if err := tb.pool.QueryRow(bg, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.disabled', '{}') RETURNING id::text`, contosoID).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.pool.Exec(bg, `
INSERT INTO webhook_deliveries (endpoint_id, event_id, tenant_id, event_type, event_xid, event_seq, attempts, last_status_code, last_error, last_latency_ms)
SELECT $1, id, tenant_id, type, xid, seq, 2, 503, 'the endpoint answered 503 Service Unavailable', 140 FROM change_events WHERE id = $2`, epID, eventID); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		consoleSignInSteps(tb, operatorUPN),
		chromedp.WaitVisible(chromedp.ID("webhooks-link")),
		chromedp.Click(chromedp.ID("webhooks-link")),
		chromedp.WaitVisible(chromedp.CSS(`section[data-endpoint="`+epID+`"]`)),
	); err != nil {
		t.Fatalf("open the webhooks page: %v", err)
	}
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-status="pending"]`)))
	if err != nil || !strings.Contains(row, "user.disabled") || !strings.Contains(row, "503") || !strings.Contains(row, "140 ms") {
		t.Fatalf("delivery row %q (%v)", row, err)
	}
	screenshot(t, ctx, "console_webhooks")
	accessible(t, ctx, "console_webhooks")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-status="pending"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	); err != nil {
		t.Fatalf("replay: %v", err)
	}
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.notice`)))
	if err != nil || !strings.Contains(notice, "Replay queued") {
		t.Fatalf("notice %q (%v)", notice, err)
	}
	accessible(t, ctx, "console_webhooks_replayed")
}
