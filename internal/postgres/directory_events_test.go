package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func eventTypes(evs []domain.Event) []domain.EventType {
	out := []domain.EventType{}
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// TestFailedPageWritesNoEvents: a page that fails in the database (here an
// ID that is no GUID, after a good user in the same page) leaves neither
// rows nor events, so the feed never tells of a change the copy lacks.
func TestFailedPageWritesNoEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	before := len(pgtest.Events(t, pool, tid))
	cp := domain.SyncCommit{Checkpoint: domain.SyncCheckpoint{Resource: "users", Link: "n", LinkKind: domain.LinkNext, Round: 1, RoundKind: domain.SyncFull}}
	good := domain.DirectoryUser{ID: uuid.NewString(), UserPrincipalName: "a@x.example", AccountEnabled: true}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{
		Users: []domain.DirectoryUser{good, {ID: "not-a-guid"}},
	}, cp); err == nil {
		t.Fatal("a page with a malformed ID applied")
	}
	gcp := cp
	gcp.Checkpoint.Resource = "groups"
	if _, err := st.DirectoryGroupsApply(ctx, tid, &domain.GroupsPage{
		Groups:  []domain.Group{{ID: uuid.NewString(), DisplayName: "g"}},
		Members: []domain.Membership{{GroupID: uuid.NewString(), MemberID: "not-a-guid"}},
	}, gcp); err == nil {
		t.Fatal("a groups page with a malformed member applied")
	}
	if evs := pgtest.Events(t, pool, tid); len(evs) != before {
		t.Errorf("failed pages wrote events %v", eventTypes(evs[before:]))
	}
	if c, err := st.DirectoryCounts(ctx, tid); err != nil || c != (domain.DirectoryCounts{}) {
		t.Errorf("failed pages wrote rows: %+v, %v", c, err)
	}
	// The same page without the bad row is applied with its event.
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Users: []domain.DirectoryUser{good}}, cp); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(pgtest.Events(t, pool, tid)[before:]); !cmp.Equal(got, []domain.EventType{domain.UserCreated}) {
		t.Errorf("good page wrote %v, want one user.created", got)
	}
}

// TestTenantLifecycleEvents: every status change is one tenant event in
// the feed, a consent is tenant.connected, a new reason for the same status
// is none, and a purge is tenant.purged once.
func TestTenantLifecycleEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := postgres.New(pool)
	id := uuid.NewString()
	next := func(int) time.Time { return time.Now().Add(time.Hour) }
	steps := []func() error{
		func() error { _, err := st.TenantUpsertConsented(ctx, id, "admin@x.example", "oid"); return err },
		func() error { return st.TenantSetStatus(ctx, id, domain.TenantActive, "verified", "worker") },
		func() error { return st.TenantSetStatus(ctx, id, domain.TenantActive, "verified again", "worker") },
		func() error { _, err := st.TenantSyncFailed(ctx, id, "boom", next); return err },
		func() error { _, err := st.TenantSyncFailed(ctx, id, "boom again", next); return err },
		func() error { return st.TenantSyncSucceeded(ctx, id, time.Now().Add(time.Hour), "") },
		func() error { return st.TenantSyncSucceeded(ctx, id, time.Now().Add(time.Hour), "") },
		func() error {
			_, err := st.DirectoryUsersApply(ctx, id, &domain.UsersPage{Users: []domain.DirectoryUser{{ID: uuid.NewString()}}},
				domain.SyncCommit{Checkpoint: domain.SyncCheckpoint{Resource: "users", Round: 1, RoundKind: domain.SyncFull}})
			return err
		},
		func() error {
			return st.TenantSetStatus(ctx, id, domain.TenantDisconnected, "admin disconnected", "admin")
		},
		func() error { return st.DirectoryPurge(ctx, id) },
		func() error { return st.DirectoryPurge(ctx, id) },
		func() error { _, err := st.TenantUpsertConsented(ctx, id, "admin@x.example", "oid"); return err },
		func() error {
			return st.TenantSetStatus(ctx, id, domain.TenantInsufficientPermissions, "roles missing", "worker")
		},
		func() error { _, err := st.TenantUpsertConsented(ctx, id, "admin@x.example", "oid"); return err },
		func() error { return st.TenantSetStatus(ctx, id, domain.TenantConsentRevoked, "app removed", "worker") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	evs := pgtest.Events(t, pool, id)
	want := []domain.EventType{
		domain.TenantConnectedEvent, domain.TenantActiveEvent, domain.TenantFailingEvent, domain.TenantActiveEvent,
		domain.UserCreated, domain.TenantDisconnectedEvent, domain.TenantPurgedEvent,
		domain.TenantConnectedEvent, domain.TenantInsufficientPermissionsEvent,
		domain.TenantConnectedEvent, domain.TenantConsentRevokedEvent,
	}
	if diff := cmp.Diff(want, eventTypes(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	wantData := `{"id": "` + id + `", "reason": "boom", "status": "failing", "display_name": ""}`
	if string(evs[2].Data) != wantData {
		t.Errorf("tenant.failing data %s, want %s", evs[2].Data, wantData)
	}
}
