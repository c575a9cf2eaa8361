package postgres

import (
	"context"
	"fmt"
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
// are handed out, ordered by (xid, seq): a row committing later has a larger
// xid than anything returned, so a reader that follows positions never skips
// one (migrations/00080_change_events.sql, docs/events.md).
const changeEventsAfter = `
SELECT xid::text, seq, id::text, tenant_id::text, type, occurred_at, data
FROM change_events
WHERE (xid, seq) > ($1::text::xid8, $2::bigint)
	AND xid < pg_snapshot_xmin(pg_current_snapshot())
	AND ($3::uuid IS NULL OR tenant_id = $3::uuid)
	AND (cardinality($4::text[]) = 0 OR type = ANY($4::text[]))
ORDER BY xid, seq
LIMIT $5`

const changeEventsPruned = `SELECT upto_xid::text, upto_seq FROM change_events_pruned`

// EventsAfter returns up to limit events after position after, in feed
// order. A position before what retention deleted is domain.ErrGone.
func (s *Store) EventsAfter(ctx context.Context, after domain.EventPos, f EventFilter, limit int) ([]domain.Event, error) {
	var tenant *string
	if f.TenantID != "" {
		tenant = &f.TenantID
	}
	types := make([]string, len(f.Types))
	for i, t := range f.Types {
		types[i] = string(t)
	}
	var out []domain.Event
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
		out, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events after %d/%d: %w", after.Xid, after.Seq, err)
	}
	return out, nil
}

func scanEvent(row pgx.CollectableRow) (domain.Event, error) {
	var ev domain.Event
	var xid string
	var at time.Time
	if err := row.Scan(&xid, &ev.Pos.Seq, &ev.ID, &ev.TenantID, &ev.Type, &at, &ev.Data); err != nil {
		return ev, err
	}
	ev.OccurredAt = at.UTC()
	var err error
	ev.Pos, err = parseEventPos(xid, ev.Pos.Seq)
	return ev, err
}

func parseEventPos(xid string, seq int64) (domain.EventPos, error) {
	x, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return domain.EventPos{}, fmt.Errorf("event xid %q: %w", xid, err)
	}
	return domain.EventPos{Xid: x, Seq: seq}, nil
}
