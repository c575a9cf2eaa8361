package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestEventsPrune: retention deletes the feed's old prefix in batches, stops
// at the first event not older than the cutoff even when older ones follow
// it, and records the horizon so a reader behind it is told, not misled.
func TestEventsPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	now := time.Now()
	// 7 old events, one recent, then 2 old ones again (a clock that moved).
	if _, err := pool.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data, occurred_at)
		SELECT $1, 'user.created', jsonb_build_object('n', n),
			CASE WHEN n = 8 THEN $2::timestamptz ELSE $2::timestamptz - interval '40 days' END
		FROM generate_series(1, 10) n`, tid, now); err != nil {
		t.Fatal(err)
	}
	all := pgtest.Events(t, pool, tid)
	waitEvents(t, st, domain.EventPos{}, postgres.EventFilter{}, len(all))
	cutoff := now.Add(-30 * 24 * time.Hour)
	var batches []int
	for {
		n, err := st.EventsPrune(ctx, cutoff, 3)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n < 3 {
			break
		}
	}
	if want := []int{3, 3, 1}; !slices.Equal(batches, want) {
		t.Errorf("batches deleted %v, want %v", batches, want)
	}
	left := pgtest.Events(t, pool, tid)
	if len(left) != 3 || left[0].ID != all[7].ID {
		t.Fatalf("%d events left, want the 3 from the recent one on", len(left))
	}
	if _, err := st.EventsAfter(ctx, all[5].Pos, postgres.EventFilter{}, 10); !errors.Is(err, domain.ErrGone) {
		t.Errorf("reading from a deleted position: %v, want ErrGone", err)
	}
	start, err := st.EventsStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if start != all[6].Pos {
		t.Errorf("feed starts at %v, want the last deleted position %v", start, all[6].Pos)
	}
	evs, err := st.EventsAfter(ctx, start, postgres.EventFilter{}, 10)
	if err != nil || len(evs) != 3 {
		t.Errorf("reading from the start: %d events, %v; want the 3 kept", len(evs), err)
	}
}
