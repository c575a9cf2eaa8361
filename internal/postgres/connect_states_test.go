package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TestConnectStateTake: a state is spent by whoever presents it, and held
// only for its own session's binding within the window, bounds included.
// The consent variant writes the tenant and its event only when held.
func TestConnectStateTake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	issued := *now
	put := func(state, binding string) {
		t.Helper()
		if err := st.ConnectStatePut(ctx, state, binding, issued); err != nil {
			t.Fatal(err)
		}
	}
	before, after := issued.Add(-time.Minute), issued.Add(time.Minute)

	tests := []struct {
		name, binding     string
		notBefore, notAft time.Time
		consent, want     bool
	}{
		{"own session", "b1", before, after, false, true},
		{"other session", "b2", before, after, false, false},
		{"no session", "", before, after, false, false},
		{"issued too early", "b1", issued.Add(time.Microsecond), after, false, false},
		{"issued too late", "b1", before, issued.Add(-time.Microsecond), false, false},
		{"at both bounds", "b1", issued, issued, false, true},
		{"consent, own session", "b1", before, after, true, true},
		{"consent, other session", "b2", before, after, true, false},
		{"consent, outside the window", "b1", after, after, true, false},
		{"consent, no session", "", before, after, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := uuid.NewString()
			put(state, "b1")
			tid := uuid.NewString()
			var held bool
			var err error
			if tt.consent {
				var tn domain.Tenant
				tn, held, err = st.ConnectStateTakeConsent(ctx, state, tt.binding, tt.notBefore, tt.notAft, tid, "admin@contoso.example", "oid")
				if held && (tn.ID != tid || tn.Status != domain.TenantPending || tn.ConsentedBy != "admin@contoso.example") {
					t.Errorf("tenant %+v", tn)
				}
			} else {
				held, err = st.ConnectStateTake(ctx, state, tt.binding, tt.notBefore, tt.notAft)
			}
			if err != nil || held != tt.want {
				t.Fatalf("held %v, %v; want %v", held, err, tt.want)
			}
			if again, err := st.ConnectStateTake(ctx, state, "b1", before, after); err != nil || again {
				t.Errorf("state not spent: held again %v, %v", again, err)
			}
			_, terr := st.TenantGet(ctx, tid)
			evs, _ := st.TenantEvents(ctx, tid, 10)
			if wrote := terr == nil; wrote != (tt.consent && tt.want) || len(evs) != map[bool]int{true: 1}[wrote] {
				t.Errorf("tenant written %v (%v), events %d", wrote, terr, len(evs))
			}
			if len(evs) == 1 && (evs[0].Kind != domain.EventConsented || evs[0].FromStatus != "" || evs[0].ToStatus != "pending" || evs[0].Actor != "admin@contoso.example") {
				t.Errorf("event %+v", evs[0])
			}
		})
	}
	if held, err := st.ConnectStateTake(ctx, "never issued", "b1", before, after); err != nil || held {
		t.Errorf("unknown state held %v, %v", held, err)
	}
}
