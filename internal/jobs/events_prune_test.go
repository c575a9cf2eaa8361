package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// TestEventsPruneJob: the leader's periodic job deletes the events older
// than EVENTS_RETENTION, a few per transaction, keeps the newer ones and
// records the horizon at the last one it deleted.
func TestEventsPruneJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	tid := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO change_events (tenant_id, type, data, occurred_at)
		SELECT $1, 'user.created', jsonb_build_object('n', n),
			now() - CASE WHEN n <= 11 THEN interval '40 days' ELSE interval '1 day' END
		FROM generate_series(1, 13) n`, tid); err != nil {
		t.Fatal(err)
	}
	seeded := pgtest.Events(t, pool, tid)
	b := setup(t, opts{pool: pool, deps: func(d *jobs.Deps) {
		d.EventsRetention, d.EventsPruneBatch, d.EventsPruneInterval = 30*24*time.Hour, 3, time.Second
	}})
	eventually(t, "old events deleted", func() bool { return len(pgtest.Events(t, pool, tid)) == 2 })
	left := pgtest.Events(t, pool, tid)
	if left[0].ID != seeded[11].ID || left[1].ID != seeded[12].ID {
		t.Errorf("kept %v, want the two recent events", left)
	}
	start, err := b.store.EventsStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if start != seeded[10].Pos {
		t.Errorf("retention horizon %v, want the last deleted event's position %v", start, seeded[10].Pos)
	}
	if _, err := b.store.EventsAfter(ctx, domain.EventPos{}, postgres.EventFilter{}, 10); !errors.Is(err, domain.ErrGone) {
		t.Errorf("reading from the feed's very start after retention: %v, want ErrGone", err)
	}
}
