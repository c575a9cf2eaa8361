package metrics

import (
	"strings"
	"testing"
)

func TestGraphNotificationSeries(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveGraphNotifications("notifications", "accepted", 3)
	m.ObserveGraphNotifications("lifecycle", "bad_client_state", 1)
	m.ObserveGraphNotifications("notifications", "malformed", 0) // nothing to count
	out := scrape(t, m)
	for _, want := range []string{
		`tenantsync_graph_notifications_total{endpoint="notifications",result="accepted"} 3`,
		`tenantsync_graph_notifications_total{endpoint="lifecycle",result="bad_client_state"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, `result="malformed"`) {
		t.Error("a count of zero made a series")
	}
	var nilM *Metrics
	nilM.ObserveGraphNotifications("notifications", "accepted", 1) // a nil Metrics records nothing
}
