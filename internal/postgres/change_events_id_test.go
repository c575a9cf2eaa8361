package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestEventIDsAcrossTheMigration: events written before
// migrations/00082_change_event_ids.sql keep the ids they were given, as do
// later events other than the directory's (a tenant's lifecycle); directory
// events, bulk-written or staged, get ids derived from their position,
// unique and the same on every read; a webhook replay finds an event by
// either kind.
func TestEventIDsAcrossTheMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, m := migrated(t)
	if err := m.DownTo(ctx, 81); err != nil {
		t.Fatal(err)
	}
	tid := uuid.NewString()
	for range 2 {
		if _, err := pool.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data) VALUES ($1, 'user.created', '{}')`, tid); err != nil {
			t.Fatal(err)
		}
	}
	var legacy []string
	rows, err := pool.Query(ctx, `SELECT id::text FROM change_events WHERE tenant_id = $1 ORDER BY xid, seq`, tid)
	if err != nil {
		t.Fatal(err)
	}
	if legacy, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	st := postgres.New(pool)
	if _, err := st.TenantUpsertConsented(ctx, tid, "admin@x.example", "oid"); err != nil {
		t.Fatal(err)
	}
	u := domain.DirectoryUser{ID: uuid.NewString(), DisplayName: "a", AccountEnabled: true}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: []domain.DirectoryUser{u, {ID: uuid.NewString()}}},
		fullPage("users", 1)); err != nil {
		t.Fatal(err)
	}
	u.DisplayName = "b"
	delta := domain.SyncCommit{Checkpoint: domain.SyncCheckpoint{Resource: "users", Link: "d", LinkKind: domain.LinkDelta, Round: 1, RoundKind: domain.SyncDelta}}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: []domain.DirectoryUser{u}}, delta); err != nil {
		t.Fatal(err)
	}
	evs := pgtest.Events(t, pool, tid)
	if len(evs) != 6 || evs[0].ID != legacy[0] || evs[1].ID != legacy[1] {
		t.Fatalf("events after the migration %+v, want 6, the first two with ids %v", evs, legacy)
	}
	seen := map[string]bool{}
	for i, ev := range evs {
		id, err := uuid.Parse(ev.ID)
		if err != nil {
			t.Fatalf("event %d id %q: %v", i, ev.ID, err)
		}
		if want := map[bool]uuid.Version{true: 4, false: 8}[i < 3]; id.Version() != want {
			t.Errorf("event %d id %s is version %d, want %d", i, ev.ID, id.Version(), want)
		}
		if seen[ev.ID] {
			t.Errorf("event id %s twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	for i, ev := range pgtest.Events(t, pool, tid) {
		if ev.ID != evs[i].ID {
			t.Errorf("event %d read again has id %s, first read %s", i, ev.ID, evs[i].ID)
		}
	}
	ep, err := st.WebhookEndpointCreate(ctx, domain.WebhookEndpoint{URL: "https://hooks.example.com/", Secret: "whsec_AAAA"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []domain.Event{evs[5], evs[0], evs[2], evs[3]} {
		if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, ev.ID); err != nil {
			t.Fatalf("replay from event %s: %v", ev.ID, err)
		}
		got, err := st.WebhookEndpointGet(ctx, ep.ID)
		if want := (domain.EventPos{Xid: ev.Pos.Xid, Seq: ev.Pos.Seq - 1}); err != nil || got.Pos != want {
			t.Errorf("replay from event %s: position %+v, %v; want %+v", ev.ID, got.Pos, err, want)
		}
	}
	// A derived id of a position the feed does not hold.
	gone := evs[5].ID[:len(evs[5].ID)-1] + "f"
	if err := st.WebhookEndpointReplayFrom(ctx, ep.ID, gone); err == nil {
		t.Errorf("replay from %s, an event never written, succeeded", gone)
	}
}
