package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func setup(t *testing.T) (*postgres.Store, *time.Time) {
	t.Helper()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	st := postgres.New(pgtest.Pool(t)).WithClock(func() time.Time { return now })
	return st, &now
}

func TestTenantLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := setup(t)
	id := uuid.NewString()

	if _, err := st.TenantGet(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("get unknown tenant: %v, want ErrNotFound", err)
	}
	tn, err := st.TenantUpsertConsented(ctx, id, "admin@contoso.example", "oid-1")
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != domain.TenantPending || tn.ConsentedBy != "admin@contoso.example" || tn.ConsentedAt == nil || !tn.ConsentedAt.Equal(*now) {
		t.Errorf("after consent: %+v", tn)
	}
	*now = now.Add(time.Minute)
	if err := st.TenantSetStatus(ctx, id, domain.TenantActive, "verified", "worker"); err != nil {
		t.Fatal(err)
	}
	// The same status and reason again is not a transition.
	if err := st.TenantSetStatus(ctx, id, domain.TenantActive, "verified", "worker"); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantSetStatus(ctx, id, "bogus", "", ""); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("bogus status: %v, want ErrInvalid", err)
	}
	if err := st.TenantSetStatus(ctx, uuid.NewString(), domain.TenantActive, "", ""); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown tenant: %v, want ErrNotFound", err)
	}
	got, err := st.TenantGet(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.TenantActive || got.StatusReason != "verified" || !got.StatusChangedAt.Equal(*now) {
		t.Errorf("after activation: %+v", got)
	}
	// Reconnecting from any state starts over as pending.
	if _, err := st.TenantUpsertConsented(ctx, id, "other@contoso.example", "oid-2"); err != nil {
		t.Fatal(err)
	}
	evs, err := st.TenantEvents(ctx, id, 10)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind+":"+e.FromStatus+"→"+e.ToStatus)
	}
	want := []string{"consented:active→pending", "status_changed:pending→active", "consented:→pending"}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("event %d = %s, want %s", i, kinds[i], want[i])
		}
	}
}

func TestTxRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := setup(t)
	id := uuid.NewString()
	boom := errors.New("boom")
	err := st.Tx(ctx, func(_ pgx.Tx, tx *postgres.Store) error {
		if _, err := tx.TenantUpsertConsented(ctx, id, "a", "b"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v", err)
	}
	if _, err := st.TenantGet(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("tenant written despite rollback: %v", err)
	}
	if evs, _ := st.TenantEvents(ctx, id, 10); len(evs) != 0 {
		t.Errorf("events written despite rollback: %v", evs)
	}
}
