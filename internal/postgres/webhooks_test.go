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

// TestWebhookDispatchAndOrder walks the store's part of a delivery: a new
// endpoint sees the events committed after it, dispatch moves its position
// once (a second dispatcher from the same position writes nothing), and a
// pair's deliveries come out in feed order until each is recorded.
func TestWebhookDispatchAndOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	insert := func(n string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.created', $2)`, tid, `{"n":`+n+`}`); err != nil {
			t.Fatal(err)
		}
	}
	ep, err := st.WebhookEndpointCreate(ctx, domain.WebhookEndpoint{URL: "https://hooks.example.com/", Secret: "whsec_AAAA"})
	if err != nil {
		t.Fatal(err)
	}
	insert("1")
	insert("2")
	// The feed hands events out once every older transaction of the
	// cluster has ended; other databases' transactions count too, so wait.
	var evs []domain.Event
	for range 600 {
		if evs, err = st.EventsAfter(ctx, ep.Pos, postgres.EventFilter{}, 10); err != nil {
			t.Fatal(err)
		}
		if len(evs) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(evs) != 2 || string(evs[0].Data) != `{"n": 1}` {
		t.Fatalf("events after a new endpoint's position: %+v, want n=1 and n=2", evs)
	}
	now := time.Now()
	if err := st.WebhookDispatch(ctx, ep.ID, ep.Pos, evs[1].Pos, evs, now); err != nil {
		t.Fatal(err)
	}
	if err := st.WebhookDispatch(ctx, ep.ID, ep.Pos, evs[1].Pos, evs, now); !errors.Is(err, postgres.ErrMoved) {
		t.Fatalf("second dispatch from the old position: %v, want ErrMoved", err)
	}
	got, err := st.WebhookEndpointGet(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pos != evs[1].Pos {
		t.Fatalf("position %+v, want the last event's %+v", got.Pos, evs[1].Pos)
	}
	pair := postgres.WebhookPair{EndpointID: ep.ID, TenantID: tid}
	pairs, err := st.WebhookPairsPending(ctx, 10)
	if err != nil || len(pairs) != 1 || pairs[0] != pair {
		t.Fatalf("pending pairs %+v, %v; want just %+v", pairs, err, pair)
	}
	for i, want := range evs {
		d, err := st.WebhookDeliveryNext(ctx, pair)
		if err != nil {
			t.Fatal(err)
		}
		if d.EventID != want.ID || d.Event == nil || string(d.Event.Data) != string(want.Data) {
			t.Fatalf("delivery %d is of event %s (%+v), want %s", i, d.EventID, d.Event, want.ID)
		}
		since, err := st.WebhookDeliveryFailed(ctx, d.ID, postgres.WebhookAttempt{At: now, StatusCode: 503, Error: "503"}, now)
		if err != nil || since.IsZero() {
			t.Fatalf("failed attempt: since %v, %v", since, err)
		}
		if err := st.WebhookDeliverySucceeded(ctx, d.ID, postgres.WebhookAttempt{At: now, StatusCode: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.WebhookDeliveryNext(ctx, pair); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("after all delivered: %v, want ErrNotFound", err)
	}
	hist, err := st.WebhookDeliveryList(ctx, ep.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Status != domain.DeliveryDelivered || hist[0].Attempts != 2 || hist[0].EventID != evs[1].ID {
		t.Fatalf("history %+v, want two delivered in two attempts each, newest first", hist)
	}
	got, err = st.WebhookEndpointGet(ctx, ep.ID)
	if err != nil || got.FailingSince != nil {
		t.Fatalf("endpoint after a success: failing since %v, %v; want not failing", got.FailingSince, err)
	}
	// Replay from the first event: the position goes back to just before
	// it and the dispatcher would hand both out again.
	if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, evs[0].ID); err != nil {
		t.Fatal(err)
	}
	got, err = st.WebhookEndpointGet(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.EventsAfter(ctx, got.Pos, postgres.EventFilter{}, 10)
	if err != nil || len(again) != 2 || again[0].ID != evs[0].ID {
		t.Fatalf("after replay from the first event: %+v, %v; want both events again", again, err)
	}
	if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, uuid.NewString()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("replay from an unknown event: %v, want ErrNotFound", err)
	}
	if err := st.WebhookEndpointDelete(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.WebhookEndpointGet(ctx, ep.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleted endpoint: %v, want ErrNotFound", err)
	}
}

// TestWebhookEndpointSkipPruned: an endpoint that fell behind retention is
// told so by EventsAfter and moved to where the feed now starts, never
// further.
func TestWebhookEndpointSkipPruned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	ep, err := st.WebhookEndpointCreate(ctx, domain.WebhookEndpoint{URL: "https://hooks.example.com/", Secret: "whsec_AAAA"})
	if err != nil {
		t.Fatal(err)
	}
	upto := domain.EventPos{Xid: ep.Pos.Xid, Seq: ep.Pos.Seq + 5}
	if _, err := pool.Exec(ctx, `INSERT INTO change_events_pruned (upto_xid, upto_seq) VALUES ($1::text::xid8, $2)`,
		strconv.FormatUint(upto.Xid, 10), upto.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EventsAfter(ctx, ep.Pos, postgres.EventFilter{}, 10); !errors.Is(err, domain.ErrGone) {
		t.Fatalf("reading from behind retention: %v, want ErrGone", err)
	}
	for range 2 { // the second call finds it already there
		if err := st.WebhookEndpointSkipPruned(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		got, err := st.WebhookEndpointGet(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Pos != upto {
			t.Fatalf("position %+v after skipping, want the retention horizon %+v", got.Pos, upto)
		}
	}
	if _, err := st.EventsAfter(ctx, upto, postgres.EventFilter{}, 10); err != nil {
		t.Fatalf("reading from the horizon: %v", err)
	}
}
