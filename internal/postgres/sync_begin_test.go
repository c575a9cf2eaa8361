package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestSyncBegin: one round trip reads what a sync job starts from — the
// tenant, its lease, its checkpoints and its throttle window — and takes
// the lease only for a tenant that syncs and that nobody else holds.
func TestSyncBegin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := postgres.New(pool).WithClock(clock)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)

	a := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}
	b := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}
	begun, err := st.SyncBegin(ctx, tid, a)
	if err != nil {
		t.Fatal(err)
	}
	if !begun.Taken || begun.Abandoned != 0 || begun.Tenant.ID != tid || begun.Tenant.Status != domain.TenantActive ||
		len(begun.Checkpoints) != 0 || !begun.ThrottledUntil.IsZero() {
		t.Fatalf("first begin of a new tenant: %+v", begun)
	}

	// The holder commits a page and a run, records a throttle window.
	cp := domain.SyncCheckpoint{Resource: "users", Link: "https://graph.example/delta?token=1", LinkKind: domain.LinkNext,
		Round: 1, RoundKind: domain.SyncFull}
	page := &domain.UsersPage{Users: []domain.DirectoryUser{{ID: uuid.NewString(), UserPrincipalName: "a@x.example", DisplayName: "A", AccountEnabled: true}}}
	if _, err := st.DirectoryUsersApply(ctx, tid, page, domain.SyncCommit{Checkpoint: cp, Lease: a, First: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SyncRunStart(ctx, tid, domain.SyncFull, now); err != nil {
		t.Fatal(err)
	}
	window := now.Add(90 * time.Second)
	if err := st.TenantThrottle(ctx, tid, window); err != nil {
		t.Fatal(err)
	}

	// Another job finds the lease held, and still reads the rest.
	begun, err = st.SyncBegin(ctx, tid, b)
	if err != nil {
		t.Fatal(err)
	}
	if begun.Taken || begun.Abandoned != 0 || len(begun.Checkpoints) != 1 || begun.Checkpoints[0] != cp ||
		!begun.ThrottledUntil.Equal(window) {
		t.Fatalf("begin beside a live holder: %+v", begun)
	}

	// Once the holder's lease lapses, the next begin takes it and closes
	// the holder's run as abandoned.
	now = now.Add(2 * time.Minute)
	begun, err = st.SyncBegin(ctx, tid, b)
	if err != nil {
		t.Fatal(err)
	}
	if !begun.Taken || begun.Abandoned != 1 {
		t.Fatalf("begin after the holder's lease lapsed: taken %v, abandoned %d", begun.Taken, begun.Abandoned)
	}

	// A's page now fails as a whole: the lease check aborts the implicit
	// transaction of a page with nothing to COPY (a delta page), so the
	// removal and the checkpoint are not written.
	delta := domain.SyncCheckpoint{Resource: "users", Link: "https://graph.example/delta?token=2", LinkKind: domain.LinkDelta,
		Round: 1, RoundKind: domain.SyncDelta}
	_, err = st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{Removed: []string{page.Users[0].ID}},
		domain.SyncCommit{Checkpoint: delta, Lease: a, First: true})
	if !errors.Is(err, domain.ErrSyncLeaseLost) {
		t.Fatalf("a page under a lost lease: %v, want ErrSyncLeaseLost", err)
	}
	counts, err := st.DirectoryCounts(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	state, err := st.SyncStateList(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Users != 1 || len(state) != 1 || state[0] != cp {
		t.Errorf("the refused page changed the copy: %d users, checkpoints %+v", counts.Users, state)
	}

	// Ending the round releases only the caller's own lease.
	next := now.Add(time.Hour)
	if err := st.TenantSyncSucceeded(ctx, tid, next, a.Owner); err != nil {
		t.Fatal(err)
	}
	if begun, err = st.SyncBegin(ctx, tid, a); err != nil || begun.Taken {
		t.Fatalf("A's round end released B's lease: taken %v, %v", begun.Taken, err)
	}
	if err := st.TenantSyncSucceeded(ctx, tid, next, b.Owner); err != nil {
		t.Fatal(err)
	}
	if begun, err = st.SyncBegin(ctx, tid, a); err != nil || !begun.Taken {
		t.Fatalf("after B's round ended: taken %v, %v", begun.Taken, err)
	}
	if got := begun.Tenant; got.LastSyncedAt == nil || !got.LastSyncedAt.Equal(now) || got.NextSyncAt == nil || !got.NextSyncAt.Equal(next) ||
		got.UserCount != 1 {
		t.Errorf("the round end was not recorded: last %v, next %v, users %d", got.LastSyncedAt, got.NextSyncAt, got.UserCount)
	}
}

// TestSyncBeginTakesNoLeaseOfATenantThatDoesNotSync: a suspended or pending
// tenant is read but not claimed; an unknown one is ErrNotFound.
func TestSyncBeginTakesNoLeaseOfATenantThatDoesNotSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := postgres.New(pgtest.Pool(t))
	lease := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}

	suspended := uuid.NewString()
	pgtest.ActiveTenant(t, st, suspended)
	if _, err := st.TenantSetSuspended(ctx, suspended, true); err != nil {
		t.Fatal(err)
	}
	pending := uuid.NewString()
	if _, err := st.TenantUpsertConsented(ctx, pending, "admin@x.example", "oid"); err != nil {
		t.Fatal(err)
	}
	for _, tid := range []string{suspended, pending} {
		begun, err := st.SyncBegin(ctx, tid, lease)
		if err != nil || begun.Taken || begun.Tenant.ID != tid {
			t.Errorf("begin of %s: taken %v, tenant %q, %v", tid, begun.Taken, begun.Tenant.ID, err)
		}
		var owner *string
		if err := st.Tx(ctx, func(tx pgx.Tx, _ *postgres.Store) error {
			return tx.QueryRow(ctx, `SELECT sync_lease_owner::text FROM tenants WHERE id = $1`, tid).Scan(&owner)
		}); err != nil || owner != nil {
			t.Errorf("tenant %s holds lease %v (%v)", tid, owner, err)
		}
	}
	if _, err := st.SyncBegin(ctx, uuid.NewString(), lease); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("begin of an unknown tenant: %v, want ErrNotFound", err)
	}
}

// TestRelaxedCommitsKeepTheSessionSetting: the commits a sync makes
// without waiting for the disk (relaxCommit) change only their own
// transaction: the connection, handed on by the pool, and a transaction
// the store is bound to keep synchronous_commit as the server has it.
func TestRelaxedCommitsKeepTheSessionSetting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // every statement below on one connection
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := postgres.New(pool)
	tid := uuid.NewString()
	pgtest.ActiveTenant(t, st, tid)
	setting := func(db interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) string {
		var v string
		if err := db.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := setting(pool)
	if want == "off" {
		t.Fatal("the server already commits asynchronously; nothing to tell apart")
	}
	// Within its batch, the relaxing statement holds for the rest of the
	// implicit transaction, and so for its commit.
	var inside string
	b := &pgx.Batch{}
	b.Queue(postgres.RelaxCommit)
	b.Queue(`SHOW synchronous_commit`).QueryRow(func(row pgx.Row) error { return row.Scan(&inside) })
	if err := pool.SendBatch(ctx, b).Close(); err != nil || inside != "off" {
		t.Fatalf("inside a relaxed batch synchronous_commit is %q (%v), want off", inside, err)
	}

	lease := domain.SyncLease{Owner: uuid.NewString(), TTL: time.Minute}
	begun, err := st.SyncBegin(ctx, tid, lease)
	if err != nil || !begun.Taken {
		t.Fatalf("begin: %+v %v", begun, err)
	}
	cp := domain.SyncCheckpoint{Resource: "users", Link: "https://graph.example/delta?token=1", LinkKind: domain.LinkDelta, RoundKind: domain.SyncDelta}
	if _, err := st.DirectoryUsersApply(ctx, tid, &domain.UsersPage{}, domain.SyncCommit{Checkpoint: cp, Lease: lease, First: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SyncRunFinish(ctx, domain.SyncRun{TenantID: tid, Kind: domain.SyncDelta, Outcome: domain.SyncSucceeded, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.TenantSyncSucceeded(ctx, tid, time.Now().Add(time.Hour), lease.Owner); err != nil {
		t.Fatal(err)
	}
	if got := setting(pool); got != want {
		t.Errorf("after the sync's commits the connection has synchronous_commit %s, want %s", got, want)
	}
	err = st.Tx(ctx, func(tx pgx.Tx, bound *postgres.Store) error {
		if _, err := bound.SyncRunFinish(ctx, domain.SyncRun{TenantID: tid, Kind: domain.SyncDelta, Outcome: domain.SyncSucceeded, StartedAt: time.Now()}); err != nil {
			return err
		}
		if got := setting(tx); got != want {
			t.Errorf("inside a transaction the store is bound to: synchronous_commit %s, want %s", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
