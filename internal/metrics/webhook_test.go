package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestWebhookSeries(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveWebhook("delivered", 30*time.Millisecond)
	m.ObserveWebhook("refused", 0)
	out := scrape(t, m)
	for _, want := range []string{
		`tenantsync_webhook_attempts_total{outcome="delivered"} 1`,
		`tenantsync_webhook_attempts_total{outcome="refused"} 1`,
		`tenantsync_webhook_attempt_duration_seconds_count 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	var nilM *Metrics
	nilM.ObserveWebhook("delivered", 0) // a nil Metrics records nothing
}
