package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

// TestEventsAfterConcurrentWritersAndReaders: writers commit many
// transactions of several events each, pausing at random inside them so that
// sequence numbers, transaction IDs and commit order all disagree, while
// readers follow the feed page by page from their cursors: one reads
// everything and moves to the last event it got, one reads a single type and
// moves on to where EventsPage says. Each must see every committed event it
// asked for exactly once (docs/events.md: the gap-free rule).
func TestEventsAfterConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	const writers, txs = 6, 30
	insert := `INSERT INTO change_events (tenant_id, type, data)
		VALUES ($1, $2, jsonb_build_object('w', $3::int, 'i', $4::int, 'k', $5::int))`

	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			pause := func() { time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond) }
			for i := range txs {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					pause()
					for k := range 1 + rng.IntN(3) {
						typ := domain.UserUpdated
						if rng.IntN(3) == 0 {
							typ = domain.UserDisabled
						}
						if _, err := tx.Exec(ctx, insert, tid, typ, w, i, k); err != nil {
							return err
						}
						pause()
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	all := &follower{f: postgres.EventFilter{TenantID: tid}, seen: map[string]int{}}
	disabled := &follower{f: postgres.EventFilter{TenantID: tid, Types: []domain.EventType{domain.UserDisabled}}, seen: map[string]int{}, page: true}
	read := func() int { return all.read(t, st) + disabled.read(t, st) }
	for done := false; !done; {
		select {
		case <-writing:
			done = true
		default:
			read()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	written := pgtest.Events(t, pool, tid)
	if len(written) < writers*txs {
		t.Fatalf("only %d events written", len(written))
	}
	var writtenDisabled []domain.Event
	for _, ev := range written {
		if ev.Type == domain.UserDisabled {
			writtenDisabled = append(writtenDisabled, ev)
		}
	}
	// Until every writer's transaction is older than all running ones (other
	// tests' too), the last events may still be held back: read on until the
	// readers have them all, or give up after a while.
	for deadline := time.Now().Add(30 * time.Second); len(all.seen) < len(written) || len(disabled.seen) < len(writtenDisabled); {
		if read() == 0 {
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	all.check(t, "reader of everything", written)
	disabled.check(t, "reader of user.disabled", writtenDisabled)
}

// follower reads the feed from its own cursor.
type follower struct {
	f         postgres.EventFilter
	page      bool // move to EventsPage's next position, not the last event's
	pos       domain.EventPos
	seen      map[string]int
	backwards int
}

func (r *follower) read(t *testing.T, st *postgres.Store) int {
	t.Helper()
	evs, next, err := st.EventsPage(context.Background(), r.pos, r.f, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if !r.pos.Less(ev.Pos) {
			r.backwards++
		}
		r.seen[ev.ID]++
		r.pos = ev.Pos
	}
	if r.page {
		r.pos = next
	}
	return len(evs)
}

func (r *follower) check(t *testing.T, name string, want []domain.Event) {
	t.Helper()
	missed, twice := 0, 0
	for _, ev := range want {
		switch r.seen[ev.ID] {
		case 0:
			missed++
		case 1:
		default:
			twice++
		}
	}
	if missed > 0 || twice > 0 || len(r.seen) != len(want) || r.backwards > 0 {
		t.Errorf("%s: of %d events it missed %d and saw %d more than once (%d distinct seen); %d came before its cursor",
			name, len(want), missed, twice, len(r.seen), r.backwards)
	}
}
