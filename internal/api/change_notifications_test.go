package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
)

type changeNotifications struct {
	State              string     `json:"state"`
	Reason             string     `json:"reason"`
	Since              *time.Time `json:"since"`
	LastNotificationAt *time.Time `json:"last_notification_at"`
}

// Every tenant says whether it is near-real-time or periodic and why
// (issue 17), in the show and the list alike; both match the OpenAPI
// document (b.do checks).
func TestTenantChangeNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	since := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	notified := since.Add(90 * time.Minute)
	subscribed := b.tenant(domain.TenantActive, "Subscribed")
	quota := b.tenant(domain.TenantActive, "Over Quota")
	off := b.tenant(domain.TenantActive, "Never Subscribed")
	if _, err := b.pool.Exec(ctx, `INSERT INTO tenant_notifications (tenant_id, state, reason, since, notified_at, notifications)
		VALUES ($1, 'subscribed', '', $3, $4, 12), ($2, 'periodic', 'quota', $3, NULL, 0)`, subscribed, quota, since, notified); err != nil {
		t.Fatal(err)
	}
	want := map[string]changeNotifications{
		subscribed: {State: "subscribed", Since: &since, LastNotificationAt: &notified},
		quota:      {State: "periodic", Reason: "quota", Since: &since},
		off:        {State: "periodic", Reason: "off"},
	}
	for id, w := range want {
		code, body := b.get("/api/v1/tenants/" + id)
		var got struct {
			ChangeNotifications *changeNotifications `json:"change_notifications"`
		}
		if err := json.Unmarshal(body, &got); code != 200 || err != nil || got.ChangeNotifications == nil {
			t.Fatalf("show %s: %d %s", id, code, body)
		}
		if d := cmp.Diff(w, *got.ChangeNotifications); d != "" {
			t.Errorf("show %s (-want +got):\n%s", id, d)
		}
	}
	code, body := b.get("/api/v1/tenants?limit=10")
	var page struct {
		Items []struct {
			ID                  string              `json:"id"`
			ChangeNotifications changeNotifications `json:"change_notifications"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &page); code != 200 || err != nil || len(page.Items) != len(want) {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, it := range page.Items {
		if d := cmp.Diff(want[it.ID], it.ChangeNotifications); d != "" {
			t.Errorf("list %s (-want +got):\n%s", it.ID, d)
		}
	}
}
