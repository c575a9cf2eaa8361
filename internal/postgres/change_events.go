package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// EventFilter narrows a change-feed read; zero fields do not filter.
type EventFilter struct {
	TenantID string
	Types    []domain.EventType
}

// Only rows whose transaction is older than every transaction still running
// (the snapshot's xmin) are handed out, ordered by (xid, seq): a row
// committing later has a larger xid than anything returned, so a reader that
// follows positions never skips one (migrations/00080_change_events.sql,
// docs/events.md). The statement also returns that xmin, even with no row:
// every event still to come sorts after (xmin, 0), which lets a reader whose
// filter matched nothing move on past the events it skipped.
//
// It reads change_feed, one event per row (a bulk page's events share a
// row of change_events, migrations/00096_change_event_batches.sql): the
// bound on row_seq — an event at (x, p) is in the row at (x, s) with
// p - 1024 < s <= p — and the order by (xid, row_seq) let the indexes of
// change_events find the first row and give the order.
var changeEventsAfter = `
WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
page AS (
	SELECT xid, row_seq, seq, id, tenant_id, type, occurred_at, data
	FROM change_feed
	WHERE (xid, row_seq) > ($1::text::xid8, $2::bigint - 1024)
		AND (xid, seq) > ($1::text::xid8, $2::bigint)
		AND xid < (SELECT xmin FROM snap)
		AND ($3::uuid IS NULL OR tenant_id = $3::uuid)
		AND (cardinality($4::text[]) = 0 OR type = ANY($4::text[]))
	ORDER BY xid, row_seq, seq
	LIMIT $5
)
SELECT snap.xmin::text, page.xid::text, page.seq, page.id::text, page.tenant_id::text, page.type, page.occurred_at, page.data
FROM snap LEFT JOIN page ON true
ORDER BY page.xid, page.row_seq, page.seq`

const changeEventsPruned = `SELECT upto_xid::text, upto_seq FROM change_events_pruned`

// EventsAfter returns up to limit events after position after, in feed
// order. A position before what retention deleted is domain.ErrGone.
func (s *Store) EventsAfter(ctx context.Context, after domain.EventPos, f EventFilter, limit int) ([]domain.Event, error) {
	evs, _, err := s.EventsPage(ctx, after, f, limit)
	return evs, err
}

// EventsPage is EventsAfter that also says where to read on: the last
// event's position when the page is full, else the furthest position the
// feed is known to be complete up to, so a filtered reader of a quiet tenant
// keeps up with the feed instead of falling behind retention.
func (s *Store) EventsPage(ctx context.Context, after domain.EventPos, f EventFilter, limit int) ([]domain.Event, domain.EventPos, error) {
	var tenant *string
	if f.TenantID != "" {
		tenant = &f.TenantID
	}
	types := make([]string, len(f.Types))
	for i, t := range f.Types {
		types[i] = string(t)
	}
	var out []domain.Event
	next := after
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		var pxid string
		var pseq int64
		switch err := tx.QueryRow(ctx, changeEventsPruned).Scan(&pxid, &pseq); {
		case err == pgx.ErrNoRows:
		case err != nil:
			return err
		default:
			pruned, err := parseEventPos(pxid, pseq)
			if err != nil {
				return err
			}
			if after.Less(pruned) {
				return &domain.Error{Kind: domain.ErrGone, Message: "events after this position were deleted by retention; start again from the beginning of the feed"}
			}
		}
		rows, err := tx.Query(ctx, changeEventsAfter, strconv.FormatUint(after.Xid, 10), after.Seq, tenant, types, limit)
		if err != nil {
			return err
		}
		var xmin string
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Event, error) {
			return scanEvent(row, &xmin)
		})
		if err != nil {
			return err
		}
		out = slices.DeleteFunc(out, func(ev domain.Event) bool { return ev.ID == "" })
		if len(out) > 0 {
			next = out[len(out)-1].Pos
		}
		if len(out) < limit {
			frontier, err := parseEventPos(xmin, 0)
			if err != nil {
				return err
			}
			if next.Less(frontier) {
				next = frontier
			}
		}
		return nil
	})
	if err != nil {
		return nil, after, fmt.Errorf("events after %d/%d: %w", after.Xid, after.Seq, err)
	}
	return out, next, nil
}

// scanEvent reads one row of changeEventsAfter; the xmin goes to xmin, and
// the row of an empty page gives an event without ID.
func scanEvent(row pgx.CollectableRow, xmin *string) (domain.Event, error) {
	var (
		ev                   domain.Event
		xid, id, tenant, typ *string
		seq                  *int64
		at                   *time.Time
	)
	if err := row.Scan(xmin, &xid, &seq, &id, &tenant, &typ, &at, &ev.Data); err != nil {
		return ev, err
	}
	if id == nil {
		return ev, nil
	}
	ev.ID, ev.TenantID, ev.Type, ev.OccurredAt = *id, *tenant, domain.EventType(*typ), at.UTC()
	var err error
	ev.Pos, err = parseEventPos(*xid, *seq)
	return ev, err
}

func parseEventPos(xid string, seq int64) (domain.EventPos, error) {
	x, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return domain.EventPos{}, fmt.Errorf("event xid %q: %w", xid, err)
	}
	return domain.EventPos{Xid: x, Seq: seq}, nil
}

// EventsStart is where a reader without a position starts: the retention
// horizon (what came before it is deleted), or the feed's start.
func (s *Store) EventsStart(ctx context.Context) (domain.EventPos, error) {
	var xid string
	var seq int64
	switch err := s.db.QueryRow(ctx, changeEventsPruned).Scan(&xid, &seq); {
	case err == pgx.ErrNoRows:
		return domain.EventPos{}, nil
	case err != nil:
		return domain.EventPos{}, fmt.Errorf("events start: %w", err)
	}
	return parseEventPos(xid, seq)
}

// changeEventsPrune deletes, in feed order, up to $2 of the oldest events
// that every reader can already have been handed out, stopping at the first
// one not older than $1: only a prefix of the feed goes, so the horizon it
// records — the last position of the last row deleted, a batch row holding
// n events (migrations/00096_change_event_batches.sql) — says exactly which
// cursors lost events (docs/events.md).
const changeEventsPrune = `
WITH head AS (
	SELECT xid, seq, bool_and(occurred_at < $1) OVER (ORDER BY xid, seq) AS old
	FROM (
		SELECT xid, seq, occurred_at FROM change_events
		WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY xid, seq
		LIMIT $2
	) h
), gone AS (
	DELETE FROM change_events e USING head
	WHERE head.old AND e.xid = head.xid AND e.seq = head.seq
	RETURNING e.xid, e.seq + coalesce(e.n, 1) - 1 AS last
), horizon AS (
	INSERT INTO change_events_pruned (upto_xid, upto_seq)
	SELECT xid, last FROM gone ORDER BY xid DESC, last DESC LIMIT 1
	ON CONFLICT (one) DO UPDATE SET upto_xid = EXCLUDED.upto_xid, upto_seq = EXCLUDED.upto_seq
)
SELECT count(*) FROM gone`

// EventsPrune deletes up to batch of the feed's oldest events that
// occurred before cutoff, and moves the retention horizon past them, in one
// transaction. It returns how many it deleted; fewer than batch means the
// prefix older than cutoff is gone.
func (s *Store) EventsPrune(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, changeEventsPrune, cutoff.UTC(), batch).Scan(&n); err != nil {
		return 0, fmt.Errorf("prune events before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
