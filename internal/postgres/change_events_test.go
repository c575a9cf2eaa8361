package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestEventsAfterHoldsBackWhatMayStillCommitBefore is the hazard of a
// sequence-ordered outbox: transaction A takes seq 1, B takes seq 2 and
// commits first. A reader that handed out seq 2 and moved its cursor past it
// would never see seq 1. EventsAfter must hold B's event back while A runs,
// then hand out both, each once.
func TestEventsAfterHoldsBackWhatMayStillCommitBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	insert := `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.created', $2)`

	a, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback(ctx) //nolint:errcheck
	if _, err := a.Exec(ctx, insert, tid, `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, insert, tid, `{"n":2}`); err != nil {
		t.Fatal(err)
	}
	read := func(after domain.EventPos) []domain.Event {
		t.Helper()
		evs, err := st.EventsAfter(ctx, after, postgres.EventFilter{TenantID: tid}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if evs := read(domain.EventPos{}); len(evs) != 0 {
		t.Fatalf("while the older transaction runs the reader got %d events, want none held out of order", len(evs))
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Other tests' transactions on the same cluster hold the feed back for
	// a moment too (docs/events.md), so wait until both are out.
	evs := waitEvents(t, st, domain.EventPos{}, postgres.EventFilter{TenantID: tid}, 2)
	if len(evs) != 2 || string(evs[0].Data) != `{"n": 1}` || string(evs[1].Data) != `{"n": 2}` {
		t.Fatalf("after commit: %+v, want n=1 then n=2", evs)
	}
	if more := read(evs[1].Pos); len(more) != 0 {
		t.Fatalf("after the last position: %d more events", len(more))
	}
	if more := read(evs[0].Pos); len(more) != 1 || more[0].ID != evs[1].ID {
		t.Fatalf("after the first position: %+v, want the second event only", more)
	}

	// Retention deleted up to the first event: a reader still before it is
	// told so instead of silently skipping.
	if _, err := pool.Exec(ctx, `INSERT INTO change_events_pruned (upto_xid, upto_seq) VALUES ($1::text::xid8, $2)`,
		strconv.FormatUint(evs[0].Pos.Xid, 10), evs[0].Pos.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EventsAfter(ctx, domain.EventPos{}, postgres.EventFilter{}, 10); !errors.Is(err, domain.ErrGone) {
		t.Fatalf("reading from before retention: %v, want ErrGone", err)
	}
	if more := read(evs[0].Pos); len(more) != 1 {
		t.Fatalf("reading from the retention horizon: %d events, want 1", len(more))
	}
}

// waitEvents reads from after until at least n events are out: a
// transaction anywhere on the cluster holds the feed back while it runs, and
// parallel tests run many. It fails the test if they never come.
func waitEvents(t testing.TB, st *postgres.Store, after domain.EventPos, f postgres.EventFilter, n int) []domain.Event {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; {
		evs, err := st.EventsAfter(ctx, after, f, n+1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}
