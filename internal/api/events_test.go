package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

type eventsPage struct {
	Data []struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		TenantID   string          `json:"tenant_id"`
		OccurredAt time.Time       `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	} `json:"data"`
	NextCursor string `json:"next_cursor"`
}

func (b *bundle) events(t *testing.T, query string) eventsPage {
	t.Helper()
	code, body := b.get("/api/v1/events" + query)
	if code != http.StatusOK {
		t.Fatalf("GET /events%s: %d %s", query, code, body)
	}
	var p eventsPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.NextCursor == "" {
		t.Fatalf("GET /events%s: no next_cursor", query)
	}
	return p
}

// follow reads the whole feed from after (a cursor, or "" for the start),
// limit events a page, and returns the event IDs and the cursor to poll.
func (b *bundle) follow(t *testing.T, after, filter string, limit int) ([]string, string) {
	t.Helper()
	var ids []string
	for range 1000 {
		q := "?limit=" + strconv.Itoa(limit) + filter
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		p := b.events(t, q)
		for _, ev := range p.Data {
			ids = append(ids, ev.ID)
		}
		after = p.NextCursor
		if len(p.Data) < limit {
			return ids, after
		}
	}
	t.Fatal("the feed never ends")
	return nil, ""
}

// seedEvents writes n events in one transaction, alternating tenants a
// and b and the types user.created, group.created and tenant.active, and
// waits until the feed hands them out.
func (b *bundle) seedEvents(t *testing.T, ta, tb string, n int) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO change_events (tenant_id, type, data)
		SELECT CASE WHEN i % 2 = 0 THEN $1::uuid ELSE $2::uuid END,
			(ARRAY['user.created', 'group.created', 'tenant.active'])[i % 3 + 1], jsonb_build_object('id', i::text)
		FROM generate_series(0, $3 - 1) i`, ta, tb, n); err != nil {
		t.Fatal(err)
	}
	want := len(pgtest.Events(t, b.pool, ""))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p := b.events(t, "?limit=1000"); len(p.Data) >= want {
			return
		}
	}
	t.Fatal("the seeded events never came out of the feed")
}

func TestEventFeed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ta, tb := uuid.NewString(), uuid.NewString()
	b.seedEvents(t, ta, tb, 12)
	stored := pgtest.Events(t, b.pool, "")
	var all []string
	for _, ev := range stored {
		all = append(all, ev.ID)
	}

	ids, poll := b.follow(t, "", "", 5)
	if !slices.Equal(ids, all) {
		t.Fatalf("following the feed 5 at a time gave %v, want %v", ids, all)
	}
	first := b.events(t, "?limit=1")
	if ev := first.Data[0]; ev.ID != stored[0].ID || ev.Type != string(stored[0].Type) || ev.TenantID != stored[0].TenantID ||
		string(ev.Data) != `{"id":"0"}` || ev.OccurredAt.IsZero() {
		t.Errorf("first event %+v, want %+v", ev, stored[0])
	}

	// An empty page keeps the reader's place; new events come from there.
	if p := b.events(t, "?after="+url.QueryEscape(poll)); len(p.Data) != 0 || p.NextCursor == "" {
		t.Errorf("polling at the end: %d events, cursor %q", len(p.Data), p.NextCursor)
	}
	b.seedEvents(t, ta, tb, 1)
	if more, _ := b.follow(t, poll, "", 5); len(more) != 1 || slices.Contains(all, more[0]) {
		t.Errorf("after one more event the poll gave %v", more)
	}

	// Filters: by tenant, by types repeated or comma-separated.
	forA, _ := b.follow(t, "", "&tenant_id="+strings.ToUpper(ta), 2)
	var wantA, wantTypes []string
	for _, ev := range pgtest.Events(t, b.pool, "") {
		if ev.TenantID == ta {
			wantA = append(wantA, ev.ID)
		}
		if ev.Type == "user.created" || ev.Type == "tenant.active" {
			wantTypes = append(wantTypes, ev.ID)
		}
	}
	if !slices.Equal(forA, wantA) {
		t.Errorf("tenant filter gave %d events, want %d", len(forA), len(wantA))
	}
	for _, q := range []string{"&type=user.created&type=tenant.active", "&type=user.created,tenant.active"} {
		if got, _ := b.follow(t, "", q, 3); !slices.Equal(got, wantTypes) {
			t.Errorf("%s gave %d events, want %d", q, len(got), len(wantTypes))
		}
	}
	// A filter that matches nothing still moves the cursor on: the reader
	// of a quiet tenant keeps up with the feed.
	quiet := b.events(t, "?tenant_id="+uuid.NewString())
	if code, body := b.get("/api/v1/events?after=" + url.QueryEscape(quiet.NextCursor)); code != 200 || strings.Contains(string(body), `"id"`) {
		t.Errorf("reading on from a quiet tenant's cursor: %d %s", code, body)
	}
}

func TestEventFeedRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedEvents(t, uuid.NewString(), uuid.NewString(), 6)
	good := b.events(t, "?limit=2").NextCursor
	tampered := good[:len(good)-1] + "A"
	if tampered == good {
		tampered = good[:len(good)-1] + "B"
	}
	for _, tt := range []struct{ name, query, typ string }{
		{"unknown type", "?type=user.created,user.exploded", "urn:tenantsync:problem:invalid-request"},
		{"bad tenant", "?tenant_id=contoso", "urn:tenantsync:problem:invalid-request"},
		{"limit too large", "?limit=1001", "urn:tenantsync:problem:invalid-request"},
		{"limit zero", "?limit=0", "urn:tenantsync:problem:invalid-request"},
		{"garbage cursor", "?after=not-a-cursor", "urn:tenantsync:problem:invalid-request"},
		{"tampered cursor", "?after=" + url.QueryEscape(tampered), "urn:tenantsync:problem:invalid-request"},
		{"unknown parameter", "?cursor=" + url.QueryEscape(good), "urn:tenantsync:problem:invalid-request"},
	} {
		code, body := b.get("/api/v1/events" + tt.query)
		if code != http.StatusBadRequest || decodeProblem(t, body).Type != tt.typ {
			t.Errorf("%s: %d %s", tt.name, code, body)
		}
	}

	// Retention deletes the first four: a cursor from before them is 410
	// with its own problem type; without a cursor the feed starts after them.
	if n, err := b.store.EventsPrune(context.Background(), time.Now().Add(time.Hour), 4); err != nil || n != 4 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	code, body := b.get("/api/v1/events?after=" + url.QueryEscape(good))
	if p := decodeProblem(t, body); code != http.StatusGone || p.Type != "urn:tenantsync:problem:events-gone" || p.Detail == "" {
		t.Errorf("cursor before retention: %d %+v", code, p)
	}
	if p := b.events(t, ""); len(p.Data) != 2 {
		t.Errorf("from the start after retention: %d events, want the 2 kept", len(p.Data))
	}
}
