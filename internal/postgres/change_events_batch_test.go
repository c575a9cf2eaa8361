package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestBatchEventsReadOneByOne: a bulk page's creation events are stored a
// row per postgres.EventBatchRow (migrations/00096_change_event_batches.sql), yet every
// reader sees one event per position: the feed read 100 at a time from any
// cursor, a cursor in the middle of a row, a webhook delivery and a replay
// of an event inside a row, and retention deleting whole rows.
func TestBatchEventsReadOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	const k, n = postgres.EventBatchRow, 2500 // rows of k events, the last one shorter
	users := make([]domain.DirectoryUser, n)
	for i := range users {
		users[i] = domain.DirectoryUser{ID: uuid.NewString(), DisplayName: "user " + uuid.NewString()[:8], AccountEnabled: i%2 == 0}
	}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, fullPage("users", 1)); err != nil {
		t.Fatal(err)
	}
	var rows, batchRows int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(batch) FROM change_events WHERE tenant_id = $1 AND type = 'user.created'`, tid).
		Scan(&rows, &batchRows); err != nil {
		t.Fatal(err)
	}
	if want := (n + k - 1) / k; rows != want || batchRows != want {
		t.Fatalf("user.created stored in %d rows (%d batch rows), want %d batch rows: the page did not take the bulk path", rows, batchRows, want)
	}

	all := pgtest.Events(t, pool, tid)
	waitEvents(t, st, domain.EventPos{}, postgres.EventFilter{TenantID: tid}, len(all))
	var created []domain.Event
	for _, ev := range all {
		if ev.Type == domain.UserCreated {
			created = append(created, ev)
		}
	}
	if len(created) != n {
		t.Fatalf("%d user.created events, want %d", len(created), n)
	}
	ids := map[string]bool{}
	for i, ev := range created {
		var u struct {
			ID             string `json:"id"`
			DisplayName    string `json:"display_name"`
			AccountEnabled bool   `json:"account_enabled"`
		}
		if err := json.Unmarshal(ev.Data, &u); err != nil {
			t.Fatalf("event %d data %s: %v", i, ev.Data, err)
		}
		if u.ID != users[i].ID || u.DisplayName != users[i].DisplayName || u.AccountEnabled != users[i].AccountEnabled {
			t.Fatalf("event %d is of %+v, want user %d as written, %+v", i, u, i, users[i])
		}
		if ids[ev.ID] {
			t.Fatalf("event id %s twice", ev.ID)
		}
		ids[ev.ID] = true
		if i > 0 && !created[i-1].Pos.Less(ev.Pos) {
			t.Fatalf("event %d at %+v, not after event %d at %+v", i, ev.Pos, i-1, created[i-1].Pos)
		}
	}

	// Pages of 100 from the start, and from cursors inside and at the ends
	// of rows, give exactly what follows the cursor.
	for _, from := range []int{-1, 0, 99, k - 2, k - 1, k, 1500, 2*k - 1, 2 * k, n - 2, n - 1} {
		pos, want := domain.EventPos{}, all
		if from >= 0 {
			pos = created[from].Pos
			want = created[from+1:]
		}
		var got []domain.Event
		for {
			page, err := st.EventsAfter(ctx, pos, postgres.EventFilter{TenantID: tid, Types: []domain.EventType{domain.UserCreated}}, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			pos = page[len(page)-1].Pos
		}
		if from < 0 {
			want = created
		}
		if len(got) != len(want) {
			t.Fatalf("from event %d: %d events, want %d", from, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || string(got[i].Data) != string(want[i].Data) {
				t.Fatalf("from event %d: event %d is %s, want %s", from, i, got[i].ID, want[i].ID)
			}
		}
	}

	// A webhook endpoint: deliveries of events inside rows carry their own
	// objects, and a replay from one goes back to just before it.
	ep, err := st.WebhookEndpointCreate(ctx, domain.WebhookEndpoint{URL: "https://hooks.example.com/", Secret: "whsec_AAAA"})
	if err != nil {
		t.Fatal(err)
	}
	pick := []domain.Event{created[0], created[1], created[k-1], created[k], created[n-1]}
	if err := st.WebhookDispatch(ctx, ep.ID, ep.Pos, created[n-1].Pos, pick, time.Now()); err != nil {
		t.Fatal(err)
	}
	pair := postgres.WebhookPair{EndpointID: ep.ID, TenantID: tid}
	for i, want := range pick {
		d, err := st.WebhookDeliveryNext(ctx, pair)
		if err != nil {
			t.Fatal(err)
		}
		if d.EventID != want.ID || d.Event == nil || string(d.Event.Data) != string(want.Data) || d.Event.Type != domain.UserCreated {
			t.Fatalf("delivery %d is of event %s (%+v), want %s with %s", i, d.EventID, d.Event, want.ID, want.Data)
		}
		if err := st.WebhookDeliverySucceeded(ctx, d.ID, postgres.WebhookAttempt{At: time.Now(), StatusCode: 200}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range []domain.Event{created[1500], created[k], created[n-1]} {
		if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, ev.ID); err != nil {
			t.Fatalf("replay from event %s: %v", ev.ID, err)
		}
		got, err := st.WebhookEndpointGet(ctx, ep.ID)
		if want := (domain.EventPos{Xid: ev.Pos.Xid, Seq: ev.Pos.Seq - 1}); err != nil || got.Pos != want {
			t.Errorf("replay from event %s: position %+v, %v; want %+v", ev.ID, got.Pos, err, want)
		}
	}
	// Past the last event of the last row: a position the feed does not hold.
	beyond := domain.EventPos{Xid: created[n-1].Pos.Xid, Seq: created[n-1].Pos.Seq + 1}
	var beyondID string
	if err := pool.QueryRow(ctx, `SELECT change_event_id($1::text::xid8, $2)::text`, fmt.Sprint(beyond.Xid), beyond.Seq).Scan(&beyondID); err != nil {
		t.Fatal(err)
	}
	if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, beyondID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("replay from a position after the last row's events: %v, want ErrNotFound", err)
	}

	// Retention deletes whole rows; the horizon is the last event of the
	// last row deleted.
	if _, err := pool.Exec(ctx, `UPDATE change_events SET occurred_at = now() - interval '40 days' WHERE tenant_id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	before := len(all) - n // the tenant's lifecycle events, written before the page
	deleted, err := st.EventsPrune(ctx, time.Now().Add(-30*24*time.Hour), before+2)
	if err != nil || deleted != before+2 {
		t.Fatalf("prune: %d rows, %v; want %d", deleted, err, before+2)
	}
	start, err := st.EventsStart(ctx)
	if err != nil || start != created[2*k-1].Pos {
		t.Fatalf("feed starts at %+v, %v; want the second row's last event %+v", start, err, created[2*k-1].Pos)
	}
	if _, err := st.EventsAfter(ctx, created[k+3].Pos, postgres.EventFilter{}, 10); !errors.Is(err, domain.ErrGone) {
		t.Errorf("reading from inside a deleted row: %v, want ErrGone", err)
	}
	rest, err := st.EventsAfter(ctx, start, postgres.EventFilter{TenantID: tid}, n)
	if err != nil || len(rest) != n-2*k || rest[0].ID != created[2*k].ID {
		t.Fatalf("after retention: %d events, %v; want the %d after the second row", len(rest), err, n-2*k)
	}
}

// TestBatchEventsAcrossTheMigration: taking
// migrations/00096_change_event_batches.sql down turns each batch row back
// into one row per event at the same positions, so every event keeps its
// id and object; taking it up again reads the same feed.
func TestBatchEventsAcrossTheMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, m := migrated(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	users := []domain.DirectoryUser{{ID: uuid.NewString(), DisplayName: "a"}, {ID: uuid.NewString(), DisplayName: "b"}, {ID: uuid.NewString(), DisplayName: "c"}}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, fullPage("users", 1)); err != nil {
		t.Fatal(err)
	}
	want := pgtest.Events(t, pool, tid)
	if len(want) < 4 {
		t.Fatalf("%d events, want the tenant's and 3 user.created", len(want))
	}
	if err := m.DownTo(ctx, 95); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT xid::text, seq, coalesce(id, change_event_id(xid, seq))::text, tenant_id::text, type, occurred_at, data
		FROM change_events ORDER BY xid, seq`)
	if err != nil {
		t.Fatal(err)
	}
	var down []domain.Event
	for rows.Next() {
		var ev domain.Event
		var xid string
		if err := rows.Scan(&xid, &ev.Pos.Seq, &ev.ID, &ev.TenantID, &ev.Type, &ev.OccurredAt, &ev.Data); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscan(xid, &ev.Pos.Xid); err != nil {
			t.Fatal(err)
		}
		down = append(down, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	same := func(when string, got []domain.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", when, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Pos != want[i].Pos || got[i].Type != want[i].Type || string(got[i].Data) != string(want[i].Data) {
				t.Errorf("%s: event %d is %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	same("after the migration down", down)
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	same("up again", pgtest.Events(t, pool, tid))
}

// TestBatchEventsRefuseNUL: a string holding U+0000 would make a batch row
// no reader can cast to jsonb; the page's user rows are refused first (text
// takes no NUL), so the page fails as a whole, COPYed or inserted: no rows,
// no events, no batch row, no checkpoint.
func TestBatchEventsRefuseNUL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	// A bulk round's page (COPY) and a first round's only page (inserted,
	// directory_insert.go).
	for _, c := range []domain.SyncCommit{fullPage("users", 1), onlyPage("users", 1)} {
		tid := uuid.NewString()
		pgtest.ActiveTenant(t, st, tid)
		before := len(pgtest.Events(t, pool, tid))
		users := []domain.DirectoryUser{{ID: uuid.NewString(), DisplayName: "fine"}, {ID: uuid.NewString(), DisplayName: "nul \x00 inside"}}
		if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: users}, c); err == nil {
			t.Fatalf("%s: a page with U+0000 in a name was applied", c.Checkpoint.Link)
		}
		var rows, batches, checkpoints int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM directory_users WHERE tenant_id = $1),
			(SELECT count(*) FROM change_events WHERE tenant_id = $1 AND batch IS NOT NULL),
			(SELECT count(*) FROM sync_state WHERE tenant_id = $1)`, tid).Scan(&rows, &batches, &checkpoints); err != nil {
			t.Fatal(err)
		}
		if after := len(pgtest.Events(t, pool, tid)); rows != 0 || batches != 0 || checkpoints != 0 || after != before {
			t.Fatalf("%s: after the refused page: %d users, %d batch rows, %d checkpoints, %d events (%d before)",
				c.Checkpoint.Link, rows, batches, checkpoints, after, before)
		}
	}
}
