package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const webhookEndpointColumns = `id::text, url, event_types, description, disabled, disabled_reason, secret,
	coalesce(previous_secret, ''), previous_secret_expires_at, pos_xid::text, pos_seq, failing_since, created_at, updated_at`

func scanWebhookEndpoint(row pgx.CollectableRow) (domain.WebhookEndpoint, error) {
	var e domain.WebhookEndpoint
	var types []string
	var xid string
	err := row.Scan(&e.ID, &e.URL, &types, &e.Description, &e.Disabled, &e.DisabledReason, &e.Secret,
		&e.PreviousSecret, &e.PreviousSecretExpiresAt, &xid, &e.Pos.Seq, &e.FailingSince, &e.CreatedAt, &e.UpdatedAt)
	if err != nil {
		return e, err
	}
	e.EventTypes = make([]domain.EventType, len(types))
	for i, t := range types {
		e.EventTypes[i] = domain.EventType(t)
	}
	e.Pos, err = parseEventPos(xid, e.Pos.Seq)
	return e, err
}

func eventTypeStrings(ts []domain.EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

const webhookEndpointCreate = `
INSERT INTO webhook_endpoints (url, event_types, description, secret)
VALUES ($1, $2, $3, $4)
RETURNING ` + webhookEndpointColumns

// WebhookEndpointCreate stores a new endpoint (URL, types, description and
// secret of e) and returns it; it receives the events committed from about
// now on (migrations/00090_webhooks.sql).
func (s *Store) WebhookEndpointCreate(ctx context.Context, e domain.WebhookEndpoint) (domain.WebhookEndpoint, error) {
	rows, err := s.db.Query(ctx, webhookEndpointCreate, e.URL, eventTypeStrings(e.EventTypes), e.Description, e.Secret)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanWebhookEndpoint)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return out, nil
}

const webhookEndpointGet = `SELECT ` + webhookEndpointColumns + ` FROM webhook_endpoints WHERE id = $1`

// WebhookEndpointGet returns one endpoint, or domain.ErrNotFound.
func (s *Store) WebhookEndpointGet(ctx context.Context, id string) (domain.WebhookEndpoint, error) {
	rows, err := s.db.Query(ctx, webhookEndpointGet, id)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanWebhookEndpoint)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, notFound(err))
	}
	return out, nil
}

const webhookEndpointList = `SELECT ` + webhookEndpointColumns + ` FROM webhook_endpoints
WHERE NOT $1::bool OR NOT disabled ORDER BY created_at, id`

// WebhookEndpointList returns every endpoint, oldest first; enabledOnly
// leaves out the disabled ones.
func (s *Store) WebhookEndpointList(ctx context.Context, enabledOnly bool) ([]domain.WebhookEndpoint, error) {
	rows, err := s.db.Query(ctx, webhookEndpointList, enabledOnly)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanWebhookEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// WebhookEndpointPatch changes the fields that are not nil.
type WebhookEndpointPatch struct {
	URL         *string
	EventTypes  *[]domain.EventType
	Description *string
	// Disabled false enables the endpoint again, forgets why it was
	// disabled and since when it failed, and makes its waiting deliveries
	// due now.
	Disabled *bool
}

// Enabling an endpoint makes its waiting deliveries due now: an operator
// who enables it expects them to go out, not to wait for a retry scheduled
// hours ahead while it failed.
const webhookEndpointUpdate = `
WITH retry AS (
	UPDATE webhook_deliveries SET next_attempt_at = now()
	WHERE endpoint_id = $1 AND status = 'pending' AND $5::bool IS FALSE
)
UPDATE webhook_endpoints SET
	url = coalesce($2, url),
	event_types = coalesce($3, event_types),
	description = coalesce($4, description),
	disabled = coalesce($5, disabled),
	disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason WHEN $5 THEN 'disabled by an operator' ELSE '' END,
	failing_since = CASE WHEN $5 = false THEN NULL ELSE failing_since END,
	updated_at = now()
WHERE id = $1
RETURNING ` + webhookEndpointColumns

// WebhookEndpointUpdate applies p to endpoint id and returns the result,
// or domain.ErrNotFound.
func (s *Store) WebhookEndpointUpdate(ctx context.Context, id string, p WebhookEndpointPatch) (domain.WebhookEndpoint, error) {
	var types []string
	if p.EventTypes != nil {
		types = eventTypeStrings(*p.EventTypes)
	}
	rows, err := s.db.Query(ctx, webhookEndpointUpdate, id, p.URL, types, p.Description, p.Disabled)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanWebhookEndpoint)
	if err != nil {
		return domain.WebhookEndpoint{}, fmt.Errorf("update webhook endpoint %s: %w", id, notFound(err))
	}
	return out, nil
}

// WebhookEndpointDelete deletes an endpoint and its delivery history, or
// answers domain.ErrNotFound.
func (s *Store) WebhookEndpointDelete(ctx context.Context, id string) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

const webhookEndpointRotate = `
UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, secret = $2, updated_at = now()
WHERE id = $1`

// WebhookEndpointRotate makes secret the endpoint's signing secret; the
// one it replaces keeps signing until oldUntil.
func (s *Store) WebhookEndpointRotate(ctx context.Context, id, secret string, oldUntil time.Time) error {
	tag, err := s.db.Exec(ctx, webhookEndpointRotate, id, secret, oldUntil)
	if err != nil {
		return fmt.Errorf("rotate secret of webhook endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("rotate secret of webhook endpoint %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

const webhookEndpointDisable = `
UPDATE webhook_endpoints SET disabled = true, disabled_reason = $2, updated_at = now() WHERE id = $1`

// WebhookEndpointDisable stops deliveries to an endpoint, saying why.
func (s *Store) WebhookEndpointDisable(ctx context.Context, id, reason string) error {
	if _, err := s.db.Exec(ctx, webhookEndpointDisable, id, reason); err != nil {
		return fmt.Errorf("disable webhook endpoint %s: %w", id, err)
	}
	return nil
}

// The position moves only from where the dispatcher read it: two
// dispatchers never hand out the same events twice.
const webhookEndpointAdvance = `
UPDATE webhook_endpoints SET pos_xid = $4::text::xid8, pos_seq = $5
WHERE id = $1 AND pos_xid = $2::text::xid8 AND pos_seq = $3`

const webhookDeliveryInsert = `
INSERT INTO webhook_deliveries (endpoint_id, event_id, tenant_id, event_type, event_xid, event_seq, next_attempt_at)
SELECT $1, e.id, e.tenant_id, e.type, e.xid::xid8, e.seq, $7
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[]) AS e(id, tenant_id, type, xid, seq)`

// ErrMoved is WebhookDispatch's answer when the endpoint's position is no
// longer the one the events were read after.
var ErrMoved = errors.New("webhook endpoint position moved")

// WebhookDispatch records a delivery, due at now, of each of events to
// endpoint id and moves its position from from to to (the last event read,
// which may be one the endpoint does not take, so that it is not read
// again), or answers ErrMoved, writing nothing, when the position is no
// longer from. events are in feed order, between from and to. Run it in
// the transaction that enqueues the deliveries.
func (s *Store) WebhookDispatch(ctx context.Context, id string, from, to domain.EventPos, events []domain.Event, now time.Time) error {
	tag, err := s.db.Exec(ctx, webhookEndpointAdvance, id, strconv.FormatUint(from.Xid, 10), from.Seq,
		strconv.FormatUint(to.Xid, 10), to.Seq)
	if err != nil {
		return fmt.Errorf("advance webhook endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("advance webhook endpoint %s: %w", id, ErrMoved)
	}
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	ids, tenants, types, xids, seqs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, ev := range events {
		ids[i], tenants[i], types[i] = ev.ID, ev.TenantID, string(ev.Type)
		xids[i], seqs[i] = strconv.FormatUint(ev.Pos.Xid, 10), ev.Pos.Seq
	}
	if _, err := s.db.Exec(ctx, webhookDeliveryInsert, id, ids, tenants, types, xids, seqs, now); err != nil {
		return fmt.Errorf("record deliveries to webhook endpoint %s: %w", id, err)
	}
	return nil
}

// WebhookPair is one endpoint and one tenant: the unit delivered in order.
type WebhookPair struct {
	EndpointID string
	TenantID   string
}

const webhookPairsPending = `
SELECT DISTINCT d.endpoint_id::text, d.tenant_id::text
FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id AND NOT e.disabled
WHERE d.status = 'pending'
LIMIT $1`

// WebhookPairsPending returns up to limit (endpoint, tenant) pairs of
// enabled endpoints that have deliveries still to make.
func (s *Store) WebhookPairsPending(ctx context.Context, limit int) ([]WebhookPair, error) {
	rows, err := s.db.Query(ctx, webhookPairsPending, limit)
	if err != nil {
		return nil, fmt.Errorf("pending webhook pairs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[WebhookPair])
	if err != nil {
		return nil, fmt.Errorf("pending webhook pairs: %w", err)
	}
	return out, nil
}

const webhookDeliveryColumns = `d.id, d.endpoint_id::text, d.event_id::text, d.tenant_id::text, d.event_type,
	d.event_xid::text, d.event_seq, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code,
	d.last_error, d.last_latency_ms, d.delivered_at, d.created_at`

func scanWebhookDelivery(row pgx.CollectableRow, extra ...any) (domain.WebhookDelivery, error) {
	var d domain.WebhookDelivery
	var xid string
	var latency *int
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.TenantID, &d.EventType, &xid, &d.Pos.Seq, &d.Status,
		&d.Attempts, &d.NextAttemptAt, &d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &latency, &d.DeliveredAt,
		&d.CreatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return d, err
	}
	if latency != nil {
		l := time.Duration(*latency) * time.Millisecond
		d.LastLatency = &l
	}
	var err error
	d.Pos, err = parseEventPos(xid, d.Pos.Seq)
	return d, err
}

const webhookDeliveryList = `SELECT ` + webhookDeliveryColumns + `
FROM webhook_deliveries d WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2`

// WebhookDeliveryList returns an endpoint's newest limit deliveries first.
func (s *Store) WebhookDeliveryList(ctx context.Context, endpointID string, limit int) ([]domain.WebhookDelivery, error) {
	rows, err := s.db.Query(ctx, webhookDeliveryList, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook endpoint %s: %w", endpointID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.WebhookDelivery, error) { return scanWebhookDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook endpoint %s: %w", endpointID, err)
	}
	return out, nil
}

// The event is joined, not copied: it is immutable, and one whose
// retention ran out comes back without it (the delivery then expires).
// An event of a batch row (migrations/00096_change_event_batches.sql) is
// the element of its array at its offset from the row's seq.
const webhookDeliveryNext = `SELECT ` + webhookDeliveryColumns + `,
	ev.xid::text, ev.type, ev.tenant_id::text, ev.occurred_at,
	CASE WHEN ev.batch IS NULL THEN ev.data ELSE (ev.batch -> (d.event_seq - ev.seq)::int)::jsonb END
FROM webhook_deliveries d LEFT JOIN LATERAL (
	SELECT xid, seq, n, type, tenant_id, occurred_at, data, batch FROM change_events
	WHERE xid = d.event_xid AND seq <= d.event_seq AND seq > d.event_seq - 1024
	ORDER BY seq DESC LIMIT 1
) ev ON ev.seq + coalesce(ev.n, 1) > d.event_seq
WHERE d.endpoint_id = $1 AND d.tenant_id = $2 AND d.status = 'pending'
ORDER BY d.event_xid, d.event_seq
LIMIT 1`

// WebhookDeliveryNext returns the first pending delivery, in feed order,
// of one (endpoint, tenant) pair with its event (nil if retention deleted
// it), or domain.ErrNotFound when none is pending.
func (s *Store) WebhookDeliveryNext(ctx context.Context, p WebhookPair) (domain.WebhookDelivery, error) {
	rows, err := s.db.Query(ctx, webhookDeliveryNext, p.EndpointID, p.TenantID)
	if err != nil {
		return domain.WebhookDelivery{}, fmt.Errorf("next delivery to webhook endpoint %s: %w", p.EndpointID, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (domain.WebhookDelivery, error) {
		var xid, typ, tenant *string
		var at *time.Time
		var data []byte
		d, err := scanWebhookDelivery(r, &xid, &typ, &tenant, &at, &data)
		if err != nil || xid == nil {
			return d, err
		}
		d.Event = &domain.Event{ID: d.EventID, Type: domain.EventType(*typ), TenantID: *tenant, OccurredAt: at.UTC(), Data: data, Pos: d.Pos}
		return d, nil
	})
	if err != nil {
		return domain.WebhookDelivery{}, fmt.Errorf("next delivery to webhook endpoint %s: %w", p.EndpointID, notFound(err))
	}
	return out, nil
}

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	At time.Time
	// StatusCode is the response's status; 0 when none came.
	StatusCode int
	Latency    time.Duration
	// Error says what went wrong, for people; empty on success.
	Error string
}

const webhookDeliverySucceeded = `
WITH d AS (
	UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = $2,
		last_status_code = $3, last_error = '', last_latency_ms = $4, delivered_at = $2
	WHERE id = $1 AND status = 'pending'
	RETURNING endpoint_id)
UPDATE webhook_endpoints SET failing_since = NULL WHERE id IN (SELECT endpoint_id FROM d) AND failing_since IS NOT NULL`

// WebhookDeliverySucceeded records a delivery acknowledged with a 2xx; its
// endpoint is no longer failing.
func (s *Store) WebhookDeliverySucceeded(ctx context.Context, id int64, a WebhookAttempt) error {
	if _, err := s.db.Exec(ctx, webhookDeliverySucceeded, id, a.At, a.StatusCode, a.Latency.Milliseconds()); err != nil {
		return fmt.Errorf("record delivery %d: %w", id, err)
	}
	return nil
}

const webhookDeliveryFailed = `
WITH d AS (
	UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2, last_status_code = $3,
		last_error = $4, last_latency_ms = $5, next_attempt_at = $6
	WHERE id = $1 AND status = 'pending'
	RETURNING endpoint_id)
UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2)
WHERE id IN (SELECT endpoint_id FROM d)
RETURNING failing_since`

// WebhookDeliveryFailed records a failed attempt, schedules the next at
// next and returns since when the endpoint has been failing.
func (s *Store) WebhookDeliveryFailed(ctx context.Context, id int64, a WebhookAttempt, next time.Time) (time.Time, error) {
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	var since time.Time
	err := s.db.QueryRow(ctx, webhookDeliveryFailed, id, a.At, code, a.Error, a.Latency.Milliseconds(), next).Scan(&since)
	if errors.Is(err, pgx.ErrNoRows) {
		return a.At, nil // delivered or expired meanwhile: nothing to count
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("record failed delivery %d: %w", id, err)
	}
	return since, nil
}

// WebhookDeliveryExpire gives up a delivery whose event retention deleted.
func (s *Store) WebhookDeliveryExpire(ctx context.Context, id int64, at time.Time) error {
	const q = `UPDATE webhook_deliveries SET status = 'expired', last_attempt_at = $2,
		last_error = 'the event was deleted by retention before it could be delivered' WHERE id = $1 AND status = 'pending'`
	if _, err := s.db.Exec(ctx, q, id, at); err != nil {
		return fmt.Errorf("expire delivery %d: %w", id, err)
	}
	return nil
}

const webhookEndpointSkipPruned = `
UPDATE webhook_endpoints w SET pos_xid = p.upto_xid, pos_seq = p.upto_seq
FROM change_events_pruned p
WHERE w.id = $1 AND (w.pos_xid, w.pos_seq) < (p.upto_xid, p.upto_seq)`

// WebhookEndpointSkipPruned moves an endpoint that fell behind retention
// (EventsAfter answered domain.ErrGone) to where the feed now starts: the
// deleted events can no longer be delivered.
func (s *Store) WebhookEndpointSkipPruned(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, webhookEndpointSkipPruned, id); err != nil {
		return fmt.Errorf("move webhook endpoint %s past retention: %w", id, err)
	}
	return nil
}

// An event is found by its public id: a derived one by the position it
// holds (eventIDPos), a stored one by that id.
const (
	webhookReplayEvent        = `SELECT xid::text, seq FROM change_events WHERE id = $1`
	webhookReplayDerivedEvent = `SELECT xid::text, $2::bigint FROM change_events
		WHERE xid = $1::text::xid8 AND seq <= $2 AND seq > $2 - 1024 AND seq + coalesce(n, 1) > $2 AND id IS NULL`
)

const webhookReplayDropPending = `
DELETE FROM webhook_deliveries
WHERE endpoint_id = $1 AND status = 'pending' AND (event_xid, event_seq) >= ($2::text::xid8, $3)`

// WebhookEndpointReplayFrom hands endpoint id the feed again from event
// eventID on: its position moves to just before the event, and its
// deliveries still pending from there are dropped, so the dispatcher records
// each event once more and every tenant's stay in order. The event must
// still be in the feed; otherwise domain.ErrNotFound.
func (s *Store) WebhookEndpointReplayFrom(ctx context.Context, id, eventID string) error {
	return s.Tx(ctx, func(_ pgx.Tx, st *Store) error {
		var xid string
		var seq int64
		var row pgx.Row
		if pos, ok := eventIDPos(eventID); ok {
			row = st.db.QueryRow(ctx, webhookReplayDerivedEvent, strconv.FormatUint(pos.Xid, 10), pos.Seq)
		} else {
			row = st.db.QueryRow(ctx, webhookReplayEvent, eventID)
		}
		if err := row.Scan(&xid, &seq); err != nil {
			return fmt.Errorf("replay event %s: %w", eventID, notFound(err))
		}
		tag, err := st.db.Exec(ctx, `UPDATE webhook_endpoints SET pos_xid = $2::text::xid8, pos_seq = $3, updated_at = now() WHERE id = $1`,
			id, xid, seq-1)
		if err != nil {
			return fmt.Errorf("replay to webhook endpoint %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("replay to webhook endpoint %s: %w", id, domain.ErrNotFound)
		}
		if _, err := st.db.Exec(ctx, webhookReplayDropPending, id, xid, seq); err != nil {
			return fmt.Errorf("replay to webhook endpoint %s: %w", id, err)
		}
		return nil
	})
}

const webhookDeliveryPrune = `
DELETE FROM webhook_deliveries WHERE id IN (
	SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2)`

// WebhookDeliveryPrune deletes up to limit finished (delivered or expired)
// deliveries created before cutoff and says how many; pending ones are
// kept however old, they are still to be made.
func (s *Store) WebhookDeliveryPrune(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.db.Exec(ctx, webhookDeliveryPrune, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}
