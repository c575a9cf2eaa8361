package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestTenantThrottleWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	id := uuid.NewString()
	if _, err := st.TenantUpsertConsented(ctx, id, "admin@contoso.example", "oid-1"); err != nil {
		t.Fatal(err)
	}
	until := func() time.Time {
		t.Helper()
		u, err := st.TenantThrottledUntil(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := until(); !u.IsZero() {
		t.Fatalf("never throttled: window until %v, want none", u)
	}
	late := now.Add(6 * time.Second)
	if err := st.TenantThrottle(ctx, id, late); err != nil {
		t.Fatal(err)
	}
	// Another process saw a shorter Retry-After meanwhile: the window stays.
	if err := st.TenantThrottle(ctx, id, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if u := until(); !u.Equal(late) {
		t.Errorf("after a shorter window: until %v, want %v", u, late)
	}
	// A window is rounded up to timestamptz's microseconds, never down.
	odd := late.Add(time.Second + 1)
	if err := st.TenantThrottle(ctx, id, odd); err != nil {
		t.Fatal(err)
	}
	if u := until(); u.Before(odd) || u.Sub(odd) >= time.Microsecond {
		t.Errorf("after %v: until %v, want it rounded up to the microsecond", odd, u)
	}
	// Other tenants, known or not, have no window.
	other := uuid.NewString()
	if _, err := st.TenantUpsertConsented(ctx, other, "admin@fabrikam.example", "oid-2"); err != nil {
		t.Fatal(err)
	}
	for _, tid := range []string{other, uuid.NewString(), "not-a-guid"} {
		if u, err := st.TenantThrottledUntil(ctx, tid); err != nil || !u.IsZero() {
			t.Errorf("tenant %q: until %v, %v; want none", tid, u, err)
		}
	}
	if err := st.TenantThrottle(ctx, uuid.NewString(), late); err != nil {
		t.Errorf("unknown tenant: %v, want nil", err)
	}
}
