package webapp

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

var notifyTile = regexp.MustCompile(`<li data-state="([a-z]+)" data-reason="([a-z]*)"><div class="tile"><span class="n">(\d+)</span>`)

// The tenant page says whether the tenant is near-real-time, with its
// subscriptions' expiry and the last notification, or periodic and why;
// the overview counts syncing tenants by state and reason (issue 17).
func TestConsoleChangeNotifications(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	live, quota, off, pending := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	insertTenants(t, tb.pool,
		consoleTenant{ID: live, Name: "Live Ltd", Domains: []string{"live.example"}},
		consoleTenant{ID: quota, Name: "Quota Ltd", Domains: []string{"quota.example"}},
		consoleTenant{ID: off, Name: "Off Ltd", Status: "failing", Domains: []string{"off.example"}},
		consoleTenant{ID: pending, Name: "Pending Ltd", Status: "pending", Domains: []string{"pending.example"}})
	addSubscription(t, tb.pool, live, "users")
	addSubscription(t, tb.pool, live, "groups")
	if _, err := tb.pool.Exec(ctx, `INSERT INTO tenant_notifications (tenant_id, state, reason, notified_at, notifications)
		VALUES ($1, 'subscribed', '', now(), 42), ($2, 'periodic', 'quota', NULL, 0), ($3, 'periodic', 'disabled', NULL, 0)`,
		live, quota, pending); err != nil {
		t.Fatal(err)
	}
	br := tb.browser(t)
	br.signInConsole(operatorUPN)
	for _, tt := range []struct {
		id   string
		want []string
	}{
		{live, []string{`data-state="subscribed"`, "Near-real-time", "<code>groups</code> until", "<code>users</code> until",
			`<dd id="notify-count">42</dd>`}},
		{quota, []string{`data-state="periodic" data-reason="quota"`, "subscription quota is used up", `<dd id="notify-subscriptions">none</dd>`,
			`<dd id="notify-last">none yet</dd>`}},
		{off, []string{`data-state="periodic" data-reason="off"`, "Change notifications are off (CHANGE_NOTIFICATIONS)"}},
	} {
		res, body := br.get("/console/tenants/"+tt.id, false)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("tenant page: %d %.300s", res.StatusCode, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("page of %s lacks %q", tt.id, w)
			}
		}
	}
	res, body := br.get("/console", false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("overview: %d", res.StatusCode)
	}
	var got []string
	for _, m := range notifyTile.FindAllStringSubmatch(body, -1) {
		got = append(got, m[1]+"/"+m[2]+"="+m[3])
	}
	// The pending tenant does not sync, so it is not counted.
	if d := cmp.Diff([]string{"subscribed/=1", "periodic/off=1", "periodic/quota=1"}, got); d != "" {
		t.Errorf("overview tiles (-want +got):\n%s", d)
	}
	if !strings.Contains(body, "1 of 3 syncing tenants are near-real-time") {
		t.Error("overview lacks the near-real-time summary")
	}
}
