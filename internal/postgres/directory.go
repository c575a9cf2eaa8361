package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantsync/tenantsync/internal/domain"
)

type pgconnTag = pgconn.CommandTag

// Temp tables live per connection and empty at every commit, so a page's
// rows never leak into the next transaction on that connection.
const (
	syncUsersTemp = `CREATE TEMP TABLE IF NOT EXISTS sync_users (
	id text NOT NULL, user_principal_name text NOT NULL, display_name text NOT NULL, given_name text NOT NULL,
	surname text NOT NULL, mail text NOT NULL, job_title text NOT NULL, account_enabled boolean NOT NULL
) ON COMMIT DELETE ROWS`
	syncGroupsTemp = `CREATE TEMP TABLE IF NOT EXISTS sync_groups (
	id text NOT NULL, display_name text NOT NULL, description text NOT NULL
) ON COMMIT DELETE ROWS`
	syncMembersTemp = `CREATE TEMP TABLE IF NOT EXISTS sync_members (
	group_id text NOT NULL, member_id text NOT NULL
) ON COMMIT DELETE ROWS`
)

var (
	syncUsersColumns   = []string{"id", "user_principal_name", "display_name", "given_name", "surname", "mail", "job_title", "account_enabled"}
	syncGroupsColumns  = []string{"id", "display_name", "description"}
	syncMembersColumns = []string{"group_id", "member_id"}
)

// stage copies n rows into the transaction's temp table (created by create
// if this connection has none yet) for one INSERT … ON CONFLICT from it;
// nothing is done for no rows.
func stage(ctx context.Context, tx pgx.Tx, create, table string, columns []string, n int, row func(i int) []any) error {
	if n == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, create); err != nil {
		return err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	return err
}

const directoryUserUpsertBatch = `
INSERT INTO directory_users (tenant_id, id, user_principal_name, display_name, given_name, surname, mail, job_title,
	account_enabled, seen_round, updated_at)
SELECT $1, id::uuid, user_principal_name, display_name, given_name, surname, mail, job_title, account_enabled, $2, now()
FROM sync_users
ON CONFLICT (tenant_id, id) DO UPDATE SET
	user_principal_name = EXCLUDED.user_principal_name, display_name = EXCLUDED.display_name,
	given_name = EXCLUDED.given_name, surname = EXCLUDED.surname, mail = EXCLUDED.mail,
	job_title = EXCLUDED.job_title, account_enabled = EXCLUDED.account_enabled,
	seen_round = EXCLUDED.seen_round, updated_at = EXCLUDED.updated_at`

// The change feed (docs/events.md) is written in the page's transaction, and
// only for rows that change: the event statements compare the staged page
// with the copy before the upsert runs, and deletes hand their rows to the
// events through RETURNING. A replayed object (protocol §5.2), a retried page
// or a full round over an unchanged directory therefore adds nothing, and a
// page that fails adds nothing either. The last parameter of each delete
// below is false for a store built WithoutDirectoryEvents, which skips the
// event statements before the upserts too. Directory events are written
// with a NULL id: their public id is derived from their position
// (migrations/00082_change_event_ids.sql).

// userData is a user's event payload, from a row of sync_users,
// directory_users or RETURNING with the same columns.
func userData(r string) string {
	return `jsonb_build_object('id', ` + r + `.id::uuid, 'user_principal_name', ` + r + `.user_principal_name,
	'display_name', ` + r + `.display_name, 'given_name', ` + r + `.given_name, 'surname', ` + r + `.surname,
	'mail', ` + r + `.mail, 'job_title', ` + r + `.job_title, 'account_enabled', ` + r + `.account_enabled)`
}

const memberData = `jsonb_build_object('group_id', group_id, 'member_id', member_id)`

// directoryUserEvents runs before the upsert: a staged user missing from the
// copy is created, or restored when a soft delete was remembered; one whose
// attributes differ is updated, or enabled/disabled when account_enabled
// flips, with previous_attributes holding the old value of each changed one.
// The copy is read one index probe per staged row (LATERAL … LIMIT 1): the
// temp table has no statistics, and a join the planner is free to choose
// became a scan of the tenant's whole copy for every page, quadratic in its
// size.
var directoryUserEvents = `
INSERT INTO change_events (id, tenant_id, type, data)
SELECT NULL::uuid, $1, CASE
		WHEN d.id IS NULL AND EXISTS (SELECT FROM directory_user_tombstones t WHERE t.tenant_id = $1 AND t.id = s.id::uuid)
			THEN 'user.restored'
		WHEN d.id IS NULL THEN 'user.created'
		WHEN d.account_enabled <> s.account_enabled THEN
			CASE WHEN s.account_enabled THEN 'user.enabled' ELSE 'user.disabled' END
		ELSE 'user.updated' END,
	` + userData("s") + ` || CASE WHEN d.id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('previous_attributes',
		jsonb_strip_nulls(jsonb_build_object(
			'user_principal_name', nullif(d.user_principal_name, s.user_principal_name),
			'display_name', nullif(d.display_name, s.display_name),
			'given_name', nullif(d.given_name, s.given_name),
			'surname', nullif(d.surname, s.surname),
			'mail', nullif(d.mail, s.mail),
			'job_title', nullif(d.job_title, s.job_title),
			'account_enabled', nullif(d.account_enabled, s.account_enabled)))) END
FROM sync_users s
LEFT JOIN LATERAL (SELECT * FROM directory_users d WHERE d.tenant_id = $1 AND d.id = s.id::uuid LIMIT 1) d ON true
WHERE d.id IS NULL
	OR (d.user_principal_name, d.display_name, d.given_name, d.surname, d.mail, d.job_title, d.account_enabled)
	<> (s.user_principal_name, s.display_name, s.given_name, s.surname, s.mail, s.job_title, s.account_enabled)`

// directoryUserUnbury forgets the soft deletes of users that came back.
const directoryUserUnbury = `
DELETE FROM directory_user_tombstones t USING sync_users s WHERE t.tenant_id = $1 AND t.id = s.id::uuid`

// directoryUserDelete deletes the removed users ($2; $3 the soft-deleted
// ones) and their memberships: a removed user leaves every group too
// (protocol §5.3 reports that as members@delta removals as well; deleting
// here keeps the copy consistent even when the two rounds disagree for a
// while). A soft-deleted user is remembered for user.restored; a hard delete
// of a user remembered that way is user.removed too.
var directoryUserDelete = `
WITH gone AS (
	DELETE FROM directory_users WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING *
), left_groups AS (
	DELETE FROM group_members WHERE tenant_id = $1 AND member_id = ANY($2::uuid[]) RETURNING group_id, member_id
), buried AS (
	INSERT INTO directory_user_tombstones (tenant_id, id, data)
	SELECT $1, gone.id, ` + userData("gone") + ` FROM gone WHERE $4 AND gone.id = ANY($3::uuid[])
	ON CONFLICT (tenant_id, id) DO UPDATE SET data = EXCLUDED.data, deleted_at = now()
), forgotten AS (
	DELETE FROM directory_user_tombstones WHERE tenant_id = $1 AND id = ANY($2::uuid[])
		AND NOT id = ANY($3::uuid[]) AND id NOT IN (SELECT id FROM gone)
	RETURNING data
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.member_removed', ` + memberData + `
	FROM left_groups WHERE $4
	UNION ALL
	SELECT NULL::uuid, $1, CASE WHEN gone.id = ANY($3::uuid[]) THEN 'user.deleted' ELSE 'user.removed' END, ` + userData("gone") + `
	FROM gone WHERE $4
	UNION ALL
	SELECT NULL::uuid, $1, 'user.removed', data FROM forgotten WHERE $4
)
SELECT count(*) FROM gone`

// directoryUserSweep deletes the users a full round did not see, and their
// memberships; for the feed they are removed (whether they were soft- or
// hard-deleted meanwhile is not known).
var directoryUserSweep = `
WITH gone AS (
	DELETE FROM directory_users WHERE tenant_id = $1 AND seen_round < $2 RETURNING *
), left_groups AS (
	DELETE FROM group_members g USING gone WHERE g.tenant_id = $1 AND g.member_id = gone.id
	RETURNING g.group_id, g.member_id
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.member_removed', ` + memberData + `
	FROM left_groups WHERE $3
	UNION ALL
	SELECT NULL::uuid, $1, 'user.removed', ` + userData("gone") + ` FROM gone WHERE $3
)
SELECT count(*) FROM gone`

// DirectoryUsersApply applies one users/delta page in one transaction:
// upserts (COPY into a temp table, then one INSERT … ON CONFLICT; straight
// COPY in a round that began on an empty copy, directory_bulk.go), deletes
// of removed users, the checkpoint cp and the page's change-feed events.
// With sweep (the last page of a full round) it also deletes every user the
// round did not see. A failed call changes nothing.
func (s *Store) DirectoryUsersApply(ctx context.Context, tenantID string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	users, removed := p.Users, p.Removed
	soft := p.SoftDeleted
	if soft == nil {
		soft = []string{}
	}
	events := !s.noEvents
	var res domain.SyncApplied
	cp := c.Checkpoint
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		b := &pgx.Batch{}
		s.queueCommit(b, tenantID, c)
		roundBulk, bulk, err := bulkRound(ctx, tx, b, directoryBulkUsers, tenantID, c)
		if err != nil {
			return err
		}
		copied := false
		if bulk && len(users) > 0 {
			if copied, err = s.bulkUsers(ctx, tx, tenantID, users, cp.Round); err != nil {
				return err
			}
			if copied {
				res.Upserts += len(users)
				users = nil
			}
		}
		if err := stage(ctx, tx, syncUsersTemp, "sync_users", syncUsersColumns, len(users), func(i int) []any {
			u := &users[i]
			return []any{u.ID, u.UserPrincipalName, u.DisplayName, u.GivenName, u.Surname, u.Mail, u.JobTitle, u.AccountEnabled}
		}); err != nil {
			return err
		}
		if len(users) > 0 {
			if events {
				b.Queue(directoryUserEvents, tenantID)
				b.Queue(directoryUserUnbury, tenantID)
			}
			b.Queue(directoryUserUpsertBatch, tenantID, cp.Round).Exec(func(tag pgconnTag) error {
				res.Upserts += int(tag.RowsAffected())
				return nil
			})
		}
		if len(removed) > 0 {
			b.Queue(directoryUserDelete, tenantID, removed, soft, events).QueryRow(func(row pgx.Row) error {
				var n int
				err := row.Scan(&n)
				res.Deletes += n
				return err
			})
		}
		if c.Sweep && !roundBulk {
			b.Queue(directoryUserSweep, tenantID, cp.Round, events).QueryRow(func(row pgx.Row) error {
				var n int
				err := row.Scan(&n)
				res.Deletes += n
				return err
			})
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return domain.SyncApplied{}, fmt.Errorf("apply users page of tenant %s: %w", tenantID, err)
	}
	return res, nil
}

const directoryGroupUpsertBatch = `
INSERT INTO directory_groups (tenant_id, id, display_name, description, seen_round, updated_at)
SELECT $1, id::uuid, display_name, description, $2, now() FROM sync_groups
ON CONFLICT (tenant_id, id) DO UPDATE SET
	display_name = EXCLUDED.display_name, description = EXCLUDED.description,
	seen_round = EXCLUDED.seen_round, updated_at = EXCLUDED.updated_at`

// groupData is a group's event payload; memberData a membership's (from
// rows with group_id and member_id columns).
func groupData(r string) string {
	return `jsonb_build_object('id', ` + r + `.id::uuid, 'display_name', ` + r + `.display_name, 'description', ` + r + `.description)`
}

// directoryGroupEvents runs before the upsert, as directoryUserEvents (and
// probes the copy row by row for the same reason, as groupMemberEvents does).
var directoryGroupEvents = `
INSERT INTO change_events (id, tenant_id, type, data)
SELECT NULL::uuid, $1, CASE WHEN d.id IS NULL THEN 'group.created' ELSE 'group.updated' END,
	` + groupData("s") + ` || CASE WHEN d.id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('previous_attributes',
		jsonb_strip_nulls(jsonb_build_object(
			'display_name', nullif(d.display_name, s.display_name),
			'description', nullif(d.description, s.description)))) END
FROM sync_groups s
LEFT JOIN LATERAL (SELECT * FROM directory_groups d WHERE d.tenant_id = $1 AND d.id = s.id::uuid LIMIT 1) d ON true
WHERE d.id IS NULL OR (d.display_name, d.description) <> (s.display_name, s.description)`

// directoryGroupDelete deletes removed groups (soft or hard: the feed has
// one group.deleted) and their memberships.
var directoryGroupDelete = `
WITH gone AS (
	DELETE FROM directory_groups WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING *
), members AS (
	DELETE FROM group_members WHERE tenant_id = $1 AND group_id = ANY($2::uuid[]) RETURNING group_id, member_id
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.member_removed', ` + memberData + ` FROM members WHERE $3
	UNION ALL
	SELECT NULL::uuid, $1, 'group.deleted', ` + groupData("gone") + ` FROM gone WHERE $3
)
SELECT count(*) FROM gone`

const (
	groupMemberEvents = `
INSERT INTO change_events (id, tenant_id, type, data)
SELECT NULL::uuid, $1, 'group.member_added', jsonb_build_object('group_id', s.group_id::uuid, 'member_id', s.member_id::uuid)
FROM sync_members s
LEFT JOIN LATERAL (SELECT true AS found FROM group_members g
	WHERE g.tenant_id = $1 AND g.group_id = s.group_id::uuid AND g.member_id = s.member_id::uuid LIMIT 1) g ON true
WHERE g.found IS NULL`
	groupMemberUpsertBatch = `
INSERT INTO group_members (tenant_id, group_id, member_id, seen_round)
SELECT $1, group_id::uuid, member_id::uuid, $2 FROM sync_members
ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET seen_round = EXCLUDED.seen_round
WHERE group_members.seen_round <> EXCLUDED.seen_round`
	groupMemberDeleteBatch = `
WITH gone AS (
	DELETE FROM group_members g USING unnest($2::uuid[], $3::uuid[]) AS r(group_id, member_id)
	WHERE g.tenant_id = $1 AND g.group_id = r.group_id AND g.member_id = r.member_id
	RETURNING g.group_id, g.member_id
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.member_removed', ` + memberData + ` FROM gone WHERE $4
)
SELECT count(*) FROM gone`
	groupMemberSweep = `
WITH gone AS (
	DELETE FROM group_members WHERE tenant_id = $1 AND seen_round < $2 RETURNING group_id, member_id
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.member_removed', ` + memberData + ` FROM gone WHERE $3
)
SELECT count(*) FROM gone`
)

var directoryGroupSweep = `
WITH gone AS (
	DELETE FROM directory_groups WHERE tenant_id = $1 AND seen_round < $2 RETURNING *
), events AS (
	INSERT INTO change_events (id, tenant_id, type, data)
	SELECT NULL::uuid, $1, 'group.deleted', ` + groupData("gone") + ` FROM gone WHERE $3
)
SELECT count(*) FROM gone`

// DirectoryGroupsApply applies one groups/delta page in one transaction:
// group upserts and deletes, members@delta additions and removals, the
// checkpoint and the page's change-feed events; with sweep it deletes the
// memberships and groups the full round did not see. A failed call changes
// nothing.
func (s *Store) DirectoryGroupsApply(ctx context.Context, tenantID string, p *domain.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	groups, removed, members, membersRemoved := p.Groups, p.Removed, p.Members, p.MembersRemoved
	events := !s.noEvents
	var res domain.SyncApplied
	cp := c.Checkpoint
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		b := &pgx.Batch{}
		s.queueCommit(b, tenantID, c)
		roundBulk, bulk, err := bulkRound(ctx, tx, b, directoryBulkGroups, tenantID, c)
		if err != nil {
			return err
		}
		copied := false
		if bulk && len(groups)+len(members) > 0 {
			if copied, err = s.bulkGroups(ctx, tx, tenantID, groups, members, cp.Round); err != nil {
				return err
			}
			if copied {
				res.Upserts += len(groups) + len(members)
				groups, members = nil, nil
			}
		}
		if err := stage(ctx, tx, syncGroupsTemp, "sync_groups", syncGroupsColumns, len(groups), func(i int) []any {
			g := &groups[i]
			return []any{g.ID, g.DisplayName, g.Description}
		}); err != nil {
			return err
		}
		if err := stage(ctx, tx, syncMembersTemp, "sync_members", syncMembersColumns, len(members), func(i int) []any {
			return []any{members[i].GroupID, members[i].MemberID}
		}); err != nil {
			return err
		}
		count := func(n *int) func(pgconnTag) error {
			return func(tag pgconnTag) error { *n += int(tag.RowsAffected()); return nil }
		}
		scan := func(n *int) func(pgx.Row) error {
			return func(row pgx.Row) error {
				var k int
				err := row.Scan(&k)
				*n += k
				return err
			}
		}
		if len(groups) > 0 {
			if events {
				b.Queue(directoryGroupEvents, tenantID)
			}
			b.Queue(directoryGroupUpsertBatch, tenantID, cp.Round).Exec(count(&res.Upserts))
		}
		if len(removed) > 0 {
			b.Queue(directoryGroupDelete, tenantID, removed, events).QueryRow(scan(&res.Deletes))
		}
		if len(members) > 0 {
			if events {
				b.Queue(groupMemberEvents, tenantID)
			}
			b.Queue(groupMemberUpsertBatch, tenantID, cp.Round).Exec(count(&res.Upserts))
		}
		if len(membersRemoved) > 0 {
			gids := make([]string, len(membersRemoved))
			mids := make([]string, len(membersRemoved))
			for i, m := range membersRemoved {
				gids[i], mids[i] = m.GroupID, m.MemberID
			}
			b.Queue(groupMemberDeleteBatch, tenantID, gids, mids, events).QueryRow(scan(&res.Deletes))
		}
		if c.Sweep && !roundBulk {
			// Memberships first, so a reader learns a swept group's members
			// left before the group went.
			b.Queue(groupMemberSweep, tenantID, cp.Round, events).QueryRow(scan(&res.Deletes))
			b.Queue(directoryGroupSweep, tenantID, cp.Round, events).QueryRow(scan(&res.Deletes))
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return domain.SyncApplied{}, fmt.Errorf("apply groups page of tenant %s: %w", tenantID, err)
	}
	return res, nil
}

const directoryUserList = `SELECT tenant_id::text, id::text, user_principal_name, display_name, given_name, surname, mail,
	job_title, account_enabled FROM directory_users WHERE tenant_id = $1 ORDER BY directory_users.id`

// DirectoryUsers returns a tenant's synced users ordered by ID.
func (s *Store) DirectoryUsers(ctx context.Context, tenantID string) ([]domain.DirectoryUser, error) {
	rows, err := s.db.Query(ctx, directoryUserList, tenantID)
	if err != nil {
		return nil, fmt.Errorf("users of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[domain.DirectoryUser])
	if err != nil {
		return nil, fmt.Errorf("users of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

const directoryGroupList = `SELECT tenant_id::text, id::text, display_name, description
	FROM directory_groups WHERE tenant_id = $1 ORDER BY directory_groups.id`

// DirectoryGroups returns a tenant's synced groups ordered by ID.
func (s *Store) DirectoryGroups(ctx context.Context, tenantID string) ([]domain.Group, error) {
	rows, err := s.db.Query(ctx, directoryGroupList, tenantID)
	if err != nil {
		return nil, fmt.Errorf("groups of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[domain.Group])
	if err != nil {
		return nil, fmt.Errorf("groups of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

const groupMemberList = `SELECT tenant_id::text, group_id::text, member_id::text
	FROM group_members WHERE tenant_id = $1 ORDER BY group_members.group_id, group_members.member_id`

// DirectoryMemberships returns a tenant's synced memberships ordered by
// group and member.
func (s *Store) DirectoryMemberships(ctx context.Context, tenantID string) ([]domain.Membership, error) {
	rows, err := s.db.Query(ctx, groupMemberList, tenantID)
	if err != nil {
		return nil, fmt.Errorf("memberships of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[domain.Membership])
	if err != nil {
		return nil, fmt.Errorf("memberships of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// tenantPurgedEvent is tenant.purged, with the tenant's payload
// (docs/events.md).
var tenantPurgedEvent = `INSERT INTO change_events (id, tenant_id, type, data)
SELECT NULL::uuid, id, 'tenant.purged', ` + tenantData + ` FROM tenants WHERE id = $1`

// DirectoryPurge deletes a tenant's directory copy and its sync
// checkpoints (the history in sync_runs stays), in one transaction, with a
// tenant.purged event when there was anything to delete: the feed reports
// the copy gone as a whole, not object by object.
func (s *Store) DirectoryPurge(ctx context.Context, tenantID string) error {
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		deleted := 0
		count := func(tag pgconnTag) error { deleted += int(tag.RowsAffected()); return nil }
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM group_members WHERE tenant_id = $1`, tenantID).Exec(count)
		b.Queue(`DELETE FROM directory_groups WHERE tenant_id = $1`, tenantID).Exec(count)
		b.Queue(`DELETE FROM directory_users WHERE tenant_id = $1`, tenantID).Exec(count)
		b.Queue(`DELETE FROM directory_user_tombstones WHERE tenant_id = $1`, tenantID).Exec(count)
		b.Queue(`DELETE FROM sync_state WHERE tenant_id = $1`, tenantID).Exec(count)
		// The sizes on the tenant row describe the copy, which is now empty.
		b.Queue(`UPDATE tenants SET user_count = 0, group_count = 0 WHERE id = $1`, tenantID)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if deleted == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, tenantPurgedEvent, tenantID)
		return err
	})
	if err != nil {
		return fmt.Errorf("purge directory of tenant %s: %w", tenantID, err)
	}
	return nil
}

const directoryCounts = `SELECT
	(SELECT count(*) FROM directory_users WHERE tenant_id = $1) AS users,
	(SELECT count(*) FROM directory_groups WHERE tenant_id = $1) AS groups,
	(SELECT count(*) FROM group_members WHERE tenant_id = $1) AS memberships`

// DirectoryCounts sizes a tenant's directory copy.
func (s *Store) DirectoryCounts(ctx context.Context, tenantID string) (domain.DirectoryCounts, error) {
	var c domain.DirectoryCounts
	if err := s.db.QueryRow(ctx, directoryCounts, tenantID).Scan(&c.Users, &c.Groups, &c.Memberships); err != nil {
		return c, fmt.Errorf("directory counts of tenant %s: %w", tenantID, err)
	}
	return c, nil
}
