package postgres

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Bulk pages (issue 13). A full round that starts on a tenant with no rows
// yet — the first sync after consent, or the first after a purge — writes
// its pages straight into the target tables with COPY, and their creation
// events straight into change_events, instead of comparing each page with
// the copy and upserting it (directory.go). A round of one page does not
// (mayBulk).
//
// The decision is the round's, taken at its first page from "the copy is
// empty" and saved with the checkpoint (sync_state.bulk,
// migrations/00083_sync_state_bulk.sql), so a round interrupted and resumed
// from its checkpoint goes on the same way. Each bulk page is still one
// transaction with its checkpoint, and COPYs inside a savepoint: when a row
// is already there (Graph repeated an object on a later page, or a page is
// retried), the primary key refuses it, the savepoint is rolled back and
// the page takes the staged path, which compares with the copy and writes
// only real changes — so no row or event is ever duplicated, and a
// malformed page fails as a whole either way. A page whose IDs are not all
// canonical GUIDs takes the staged path too, which reports them. The
// creation events of a bulk page go in as a few change_events rows of up
// to 128 events each (copyEvents, migrations/00096_change_event_batches.sql).
//
// Measured with `go test -p 1 -run '^$' -bench 'BenchmarkFullSync100k$'
// -benchtime 2x ./internal/dirsync` on the project's 2-core machine, shared
// with other work while measuring (one figure per run, in the order run):
// ratio-to-raw-copy is the first sync of a 100,000-user tenant (users,
// groups, memberships and their creation events) against a raw COPY of its
// user rows in the same run; -events-off the same sync without directory
// events (what the write path itself costs; the feed's price is in
// docs/events.md, Cost). Target 0.8 of raw COPY, not reached:
//
//	                                             events on   off
//	staged pages (before)                        0.31 0.19 0.25 0.23
//	COPY, IDs sent as text                       0.41 0.19
//	COPY, IDs as 16 bytes (pgx's failed text     0.27 0.37 0.31 0.35 0.32 0.40
//	  encode had cost more than the row)         0.37 0.36 0.30 0.37   0.53 0.49 0.54 0.53
//	+ a bulk round skips its sweep, and sends    0.40 0.39             0.57 0.62
//	  its savepoint with the bulk question
//	as committed                                 0.29 0.44             0.47 0.60
//	(raw COPY sent as 16-byte UUIDs too: honest)  0.41 0.42             0.50 0.46
//	pages waiting for the store written as one    0.56 0.56 0.50        0.58 0.59 0.55
//	  (dirsync aheadPages: COPYs of ~9,000 rows)
//	the same, alternating with the code before    0.29 0.31 → 0.44 0.44  0.31 0.34 → 0.49 0.47
//	  it, later in the session (another machine)
//	the directory tables' tenant checked per       0.50 0.50 → 0.31 0.31  0.50 0.52 → 0.37 0.37
//	  statement, not per row (migration 00100;
//	  alternating; the sync 105,000–112,000 →
//	  182,000–189,000 users/s, the raw COPY,
//	  which paid the same per-row check,
//	  209,000–224,000 → 586,000–608,000 rows/s)
//
// The benchmark now starts every sync and every raw COPY on vacuumed
// tables (a purge had left the synced tenant's key range full of dead
// index entries, which the raw COPY's best of three runs did not meet),
// alternates them, takes as the baseline the faster of one COPY and
// COPYs of 9 × 999 rows (one COPY's transition table spills past
// work_mem), and prices the sync in CPU. Four runs of 3 iterations
// (`go test -p 1 -run '^$' -bench 'FullSync100k$' -benchtime 3x
// ./internal/dirsync`; another machine again, noisy: raw COPY
// 285,000–400,000 rows/s):
//
//	                                            events on   off
//	ratio-to-raw-copy                           0.33–0.38   0.43–0.47
//	ratio-ceiling                               0.43–0.51   0.60–0.66
//	                                            process     Postgres
//	CPU per sync (events on)                    480–670 ms  530–720 ms
//	CPU per raw COPY                            110–205 ms  200–275 ms
//
// Then delta pages' elements read member by member (internal/graph,
// delta_decode.go), alternating with the code before, 3 runs each:
// ratio-to-raw-copy 0.324–0.331 → 0.343–0.358, ratio-ceiling 0.46–0.47
// → 0.49–0.51. Tried and not kept: the bulk pages' rows built as a
// binary COPY stream in Go before each COPY instead of pgx's CopyFrom,
// 3 runs each alternating: this process's CPU per sync 436–479 → 389–419
// ms, but the ratio unchanged (0.339–0.386 → 0.339–0.344): Postgres was
// not waiting on the encoding.
//
// ratio-ceiling is the raw COPY's wall time over the sync's CPU spread
// over both cores: the best ratio any scheduling of the same work could
// reach here. It is below 0.8 even without events, so the target cannot
// be reached on this machine by overlapping more; the sync would have to
// use less CPU than it does, where the largest parts are Postgres's
// second COPY (the events), decoding Graph's JSON (about 1.5 ms of CPU a
// 999-user page, BenchmarkDecodePages), and, on this side, encoding the
// rows and events for COPY.
//
// A raw COPY committed page by page, as a sync must, is itself 0.61 of one
// COPY in pages of 999 rows and 0.82 in pages of 9 × 999
// (BenchmarkRawCopyPaged, before it started settled; settled, two runs:
// 0.47–0.63 and 1.1–1.5 of one COPY); the creation events then add a second COPY of
// about the same bytes.
// Raw COPY ran at 86,000–118,000 users/s; the sync with events at
// 27,000–47,000 (before: 15,000–26,500). What remains: a CPU profile of the
// sync puts more than half of the process's time in decoding Graph's JSON
// pages (internal/graph, encoding/json), which a raw COPY does not do, on
// the same two cores as Postgres; and the creation events are a second,
// larger row per object (docs/events.md, Cost).

// directoryBulkUsers answers, for a page of full round $2: whether the
// round is a bulk one (saved at its first page, else decided now from an
// empty copy), and whether this page may be (no soft-deleted user is
// remembered: a user coming back is user.restored, which the staged path
// writes).
const directoryBulkUsers = `
SELECT CASE WHEN s.round = $2 AND s.round_kind = 'full' THEN s.bulk
		ELSE NOT EXISTS (SELECT FROM directory_users WHERE tenant_id = $1) END,
	NOT EXISTS (SELECT FROM directory_user_tombstones WHERE tenant_id = $1)
FROM (VALUES (true)) v LEFT JOIN sync_state s ON s.tenant_id = $1 AND s.resource = 'users'`

// directoryBulkGroups is directoryBulkUsers for groups and memberships.
const directoryBulkGroups = `
SELECT CASE WHEN s.round = $2 AND s.round_kind = 'full' THEN s.bulk
		ELSE NOT EXISTS (SELECT FROM directory_groups WHERE tenant_id = $1)
			AND NOT EXISTS (SELECT FROM group_members WHERE tenant_id = $1) END,
	true
FROM (VALUES (true)) v LEFT JOIN sync_state s ON s.tenant_id = $1 AND s.resource = 'groups'`

// syncStateBulk saves the round's decision with the checkpoint (queued
// after it).
const syncStateBulk = `UPDATE sync_state SET bulk = $3 WHERE tenant_id = $1 AND resource = $2`

var (
	bulkUsersColumns   = []string{"tenant_id", "id", "user_principal_name", "display_name", "given_name", "surname", "mail", "job_title", "account_enabled", "seen_round"}
	bulkGroupsColumns  = []string{"tenant_id", "id", "display_name", "description", "seen_round"}
	bulkMembersColumns = []string{"tenant_id", "group_id", "member_id", "seen_round"}
	bulkEventsColumns  = []string{"id", "tenant_id", "type", "n", "batch"}
)

// mayBulk says whether page c may belong to a bulk round, which a full
// round's page asks Postgres (bulkRound) before its writes. A round that
// is one page (its first page carries the deltaLink: a small tenant, most
// of a fleet) is not worth the question: its page is written the way a
// delta page is, in one round trip (applyPage), where the question, the
// COPYs and an explicit transaction took five or six.
func mayBulk(c domain.SyncCommit) bool {
	cp := c.Checkpoint
	return cp.RoundKind == domain.SyncFull && !(c.First && cp.LinkKind == domain.LinkDelta)
}

// bulkRound says whether page c of tenantID's resource belongs to a bulk
// round, and whether the page itself is to be COPYed (q is
// directoryBulkUsers or directoryBulkGroups); it queues the round's
// decision on b, after the checkpoint. Every row of a bulk round's resource
// was written by the round, so its sweep has nothing to delete and is
// skipped. A page of a full round also opens the savepoint copyAll rolls
// back to, in the same round trip as the question (it is released at the
// commit; the page's writes, whichever path they take, are made in it).
func bulkRound(ctx context.Context, tx pgx.Tx, b *pgx.Batch, q, tenantID string, c domain.SyncCommit) (round, page bool, err error) {
	cp := c.Checkpoint
	if cp.RoundKind != domain.SyncFull {
		return false, false, nil
	}
	qb := &pgx.Batch{}
	qb.Queue(q, tenantID, cp.Round).QueryRow(func(row pgx.Row) error { return row.Scan(&round, &page) })
	qb.Queue(`SAVEPOINT bulk_page`)
	if err := tx.SendBatch(ctx, qb).Close(); err != nil {
		return false, false, err
	}
	b.Queue(syncStateBulk, tenantID, cp.Resource, round)
	return round, round && page, nil
}

// bulkPage is bulkRound for a page of rows rows, and then, when the page
// is to be COPYed and has any, copy: roundBulk as bulkRound's, copied as
// copy's (false: the page takes the other path).
func bulkPage(ctx context.Context, tx pgx.Tx, b *pgx.Batch, q, tenantID string, c domain.SyncCommit, rows int,
	copy func() (bool, error)) (roundBulk, copied bool, err error) {
	roundBulk, bulk, err := bulkRound(ctx, tx, b, q, tenantID, c)
	if err != nil || !bulk || rows == 0 {
		return roundBulk, false, err
	}
	copied, err = copy()
	return roundBulk, copied, err
}

// copyAll runs the COPYs of a bulk page after bulkRound's savepoint: false,
// with nothing written, when a row is already there.
func copyAll(ctx context.Context, tx pgx.Tx, copies func(tx pgx.Tx) error) (bool, error) {
	err := copies(tx)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		_, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT bulk_page`)
		return false, err
	}
	return err == nil, err
}

// bulkUsers writes users, a page of a bulk round, with COPY and their
// user.created events; false, with nothing written, when the page must take
// the staged path.
func (s *Store) bulkUsers(ctx context.Context, tx pgx.Tx, tenantID string, users []domain.DirectoryUser, round int64) (bool, error) {
	tid, ids, ok := userGUIDs(tenantID, users)
	if !ok {
		return false, nil
	}
	return copyAll(ctx, tx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"directory_users"}, bulkUsersColumns, pgx.CopyFromSlice(len(users), func(i int) ([]any, error) {
			u := &users[i]
			return []any{tid.uuid, ids[i].uuid, u.UserPrincipalName, u.DisplayName, u.GivenName, u.Surname, u.Mail, u.JobTitle, u.AccountEnabled, round}, nil
		}))
		if err != nil || s.noEvents {
			return err
		}
		return copyEvents(ctx, tx, tid, userCreations(ids, users)...)
	})
}

// bulkGroups writes groups and members, a page of a bulk round, with COPY
// and their group.created and group.member_added events; false, with
// nothing written, when the page must take the staged path.
func (s *Store) bulkGroups(ctx context.Context, tx pgx.Tx, tenantID string, groups []domain.Group, members []domain.Membership, round int64) (bool, error) {
	tid, gids, mids, ok := groupGUIDs(tenantID, groups, members)
	if !ok {
		return false, nil
	}
	return copyAll(ctx, tx, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"directory_groups"}, bulkGroupsColumns, pgx.CopyFromSlice(len(groups), func(i int) ([]any, error) {
			return []any{tid.uuid, gids[i].uuid, groups[i].DisplayName, groups[i].Description, round}, nil
		})); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"group_members"}, bulkMembersColumns, pgx.CopyFromSlice(len(members), func(i int) ([]any, error) {
			return []any{tid.uuid, mids[i][0].uuid, mids[i][1].uuid, round}, nil
		})); err != nil || s.noEvents {
			return err
		}
		return copyEvents(ctx, tx, tid, groupCreations(gids, groups, mids)...)
	})
}

// userGUIDs parses the IDs of tenantID and of a page's users, for a page
// written without comparing it with the copy; false when one is not a
// canonical GUID (the staged path reports it).
func userGUIDs(tenantID string, users []domain.DirectoryUser) (tid guid, ids []guid, ok bool) {
	if tid, ok = parseGUID(tenantID); !ok {
		return tid, nil, false
	}
	ids = make([]guid, len(users))
	for i := range users {
		if ids[i], ok = parseGUID(users[i].ID); !ok {
			return tid, nil, false
		}
	}
	return tid, ids, true
}

// groupGUIDs is userGUIDs for a page's groups and memberships.
func groupGUIDs(tenantID string, groups []domain.Group, members []domain.Membership) (tid guid, gids []guid, mids [][2]guid, ok bool) {
	if tid, ok = parseGUID(tenantID); !ok {
		return tid, nil, nil, false
	}
	gids = make([]guid, len(groups))
	for i := range groups {
		if gids[i], ok = parseGUID(groups[i].ID); !ok {
			return tid, nil, nil, false
		}
	}
	mids = make([][2]guid, len(members))
	for i, m := range members {
		var ok1, ok2 bool
		mids[i][0], ok1 = parseGUID(m.GroupID)
		mids[i][1], ok2 = parseGUID(m.MemberID)
		if !ok1 || !ok2 {
			return tid, nil, nil, false
		}
	}
	return tid, gids, mids, true
}

// userCreations are the user.created events of a page written whole.
func userCreations(ids []guid, users []domain.DirectoryUser) []eventRun {
	return []eventRun{{domain.UserCreated, len(users), func(b []byte, i int) []byte {
		return appendUserData(b, ids[i].text, &users[i])
	}}}
}

// groupCreations are the group.created and then group.member_added events
// of a page written whole.
func groupCreations(gids []guid, groups []domain.Group, mids [][2]guid) []eventRun {
	return []eventRun{
		{domain.GroupCreated, len(groups), func(b []byte, i int) []byte { return appendGroupData(b, gids[i].text, &groups[i]) }},
		{domain.GroupMemberAdded, len(mids), func(b []byte, i int) []byte { return appendMemberData(b, mids[i]) }},
	}
}

// eventBatchRow is how many events copyEvents writes to one change_events
// row. migrations/00096_change_event_batches.sql allows up to 1,024 (seq
// steps by 1,024); a reader parses a row's whole array to reach any of its
// events, so rows are kept small enough that a page of 100 events, or one
// webhook delivery, parses well under a millisecond of JSON, and large
// enough that the rows' own cost stays a small part of the events'.
const eventBatchRow = 128

// pageEvents is the two CTEs of a page's write that insert its events,
// from a CTE ev of columns ord (the row's place in the page), type and data
// (its jsonb object): the creations, of type created, as batch rows of
// eventBatchRow events in page order, the rows copyEvents writes; every
// other event, carrying previous attributes, as a row of its own. Creation
// events are most of a first sync's, and one row each cost more than the
// page's own rows (docs/events.md, Cost).
func pageEvents(created domain.EventType) string {
	return `events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, type, data FROM ev WHERE type <> '` + string(created) + `'
), created AS (
	INSERT INTO change_events (id, tenant_id, type, n, batch)
	SELECT NULL::uuid, $1, type, count(*), json_agg(data ORDER BY ord)
	FROM ev WHERE type = '` + string(created) + `'
	GROUP BY type, (ord - 1) / ` + strconv.Itoa(eventBatchRow) + `
)`
}

// eventRun is n events of one type; data appends the i-th one's object.
type eventRun struct {
	typ  domain.EventType
	n    int
	data func(b []byte, i int) []byte
}

// copyEvents writes runs, in order, as batch rows of change_events with one
// COPY: eventBatchRow events of one type per row (fewer at a run's end),
// their objects in a json array stored as written — a page of 999
// creation events is 8 rows instead of 999 rows and 1,998 index entries
// (docs/events.md, Cost). Every object must also be valid jsonb, which
// readers cast it to: the only string json takes and jsonb refuses is one
// holding U+0000, and the rows COPYed before the events, in the same
// savepoint, already refuse it (Postgres text takes no NUL), so such a page
// fails as a whole (TestBatchEventsRefuseNUL).
func copyEvents(ctx context.Context, tx pgx.Tx, tid guid, runs ...eventRun) error {
	chunks := eventChunks(runs)
	if len(chunks) == 0 {
		return nil
	}
	var buf []byte
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"change_events"}, bulkEventsColumns, pgx.CopyFromSlice(len(chunks), func(c int) ([]any, error) {
		ch := chunks[c]
		buf = ch.appendBatch(buf[:0])
		return []any{nil, tid.uuid, string(ch.run.typ), ch.hi - ch.lo, buf}, nil
	}))
	return err
}

// eventChunk is one batch row of events: those from lo to hi of run.
type eventChunk struct {
	run    *eventRun
	lo, hi int
}

// eventChunks splits runs, in order, into batch rows of eventBatchRow
// events of one type (fewer at a run's end).
func eventChunks(runs []eventRun) []eventChunk {
	var chunks []eventChunk
	for r := range runs {
		for lo := 0; lo < runs[r].n; lo += eventBatchRow {
			chunks = append(chunks, eventChunk{&runs[r], lo, min(runs[r].n, lo+eventBatchRow)})
		}
	}
	return chunks
}

// appendBatch appends the chunk's json array of event objects to b.
func (ch eventChunk) appendBatch(b []byte) []byte {
	b = append(b, '[')
	for i := ch.lo; i < ch.hi; i++ {
		if i > ch.lo {
			b = append(b, ',')
		}
		b = ch.run.data(b, i)
	}
	return append(b, ']')
}
