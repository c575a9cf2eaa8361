package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
)

func newSubscription(base, res string) graph.NewSubscription {
	return graph.NewSubscription{Resource: res, ChangeType: "updated,deleted", NotificationURL: base + "/graph/notifications",
		LifecycleNotificationURL: base + "/graph/lifecycle", ExpiresAt: time.Now().Add(10 * 24 * time.Hour),
		ClientState: "a-client-state-of-the-test"}
}

func TestSubscriptionRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, c := setup(t)
	tid := entraemu.ContosoTenantID
	base := jobstest.NotificationReceiver(t)
	s, err := c.CreateSubscription(ctx, tid, newSubscription(base, "users"))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == "" || s.Resource != "users" || s.NotificationURL != base+"/graph/notifications" {
		t.Errorf("created %+v", s)
	}
	list, err := c.Subscriptions(ctx, tid)
	if err != nil || len(list) != 1 || list[0].ID != s.ID || !list[0].ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("list: %+v, %v; want the one created", list, err)
	}
	until := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
	granted, err := c.RenewSubscription(ctx, tid, s.ID, until)
	if err != nil {
		t.Fatal(err)
	}
	if !granted.Equal(until) || !srv.Subscriptions(tid)[0].ExpirationDateTime.Equal(until) {
		t.Errorf("renewed until %v, emulator %v; want %v", granted, srv.Subscriptions(tid)[0].ExpirationDateTime, until)
	}
	if err := srv.SendLifecycle(s.ID, "reauthorizationRequired"); err != nil {
		t.Fatal(err)
	}
	if err := c.ReauthorizeSubscription(ctx, tid, s.ID); err != nil {
		t.Fatal(err)
	}
	if srv.Subscriptions(tid)[0].ReauthorizationRequired {
		t.Error("still needs reauthorization")
	}
	if err := c.DeleteSubscription(ctx, tid, s.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Subscriptions(tid)); n != 0 {
		t.Errorf("%d subscriptions after delete", n)
	}
	// Gone now: every call on it says so.
	_, err = c.RenewSubscription(ctx, tid, s.ID, until)
	if k := domain.FaultKindOf(err); k != domain.FaultVanished {
		t.Errorf("renew a deleted subscription: %v (%s), want vanished", err, k)
	}
	if k := domain.FaultKindOf(c.DeleteSubscription(ctx, tid, s.ID)); k != domain.FaultVanished {
		t.Errorf("delete a deleted subscription: %s, want vanished", k)
	}
}

// TestSubscriptionFaults: the failures the job acts on differently reach it
// as different fault kinds (protocol §7), and the clientState never
// appears in an error.
func TestSubscriptionFaults(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	for _, tt := range []struct {
		name   string
		change func(*entraemu.Server)
		base   func(t testing.TB) string
		want   domain.FaultKind
	}{
		{"quota", func(s *entraemu.Server) { s.SetSubscriptionQuota(1) }, jobstest.NotificationReceiver, domain.FaultQuotaExceeded},
		{"missing permission", func(s *entraemu.Server) { _ = s.RemoveRoles(tid) }, jobstest.NotificationReceiver, domain.FaultInsufficientPermissions},
		{"unreachable endpoint", func(*entraemu.Server) {}, func(testing.TB) string { return "http://127.0.0.1:1" }, domain.FaultValidationFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := setup(t)
			base := tt.base(t)
			before := 0
			if tt.want == domain.FaultQuotaExceeded {
				// The one subscription the quota allows.
				if _, err := c.CreateSubscription(context.Background(), tid, newSubscription(base, "users")); err != nil {
					t.Fatal(err)
				}
				before = 1
			}
			tt.change(srv)
			tokens := srv.Counters(tid).TokenRequests
			_, err := c.CreateSubscription(context.Background(), tid, newSubscription(base, "groups"))
			if k := domain.FaultKindOf(err); k != tt.want {
				t.Fatalf("%v: kind %s, want %s", err, k, tt.want)
			}
			if tt.want == domain.FaultQuotaExceeded {
				// The token is fine: a quota must not drop it.
				if _, err := c.Subscriptions(context.Background(), tid); err != nil {
					t.Fatal(err)
				}
				if n := srv.Counters(tid).TokenRequests - tokens; n != 0 {
					t.Errorf("%d token requests after a quota refusal, want none", n)
				}
			}
			if err != nil && strings.Contains(err.Error(), "a-client-state-of-the-test") {
				t.Errorf("the error shows the client state: %v", err)
			}
			if n := len(srv.Subscriptions(tid)); n != before {
				t.Errorf("%d subscriptions after a refused create, want %d", n, before)
			}
		})
	}
}
