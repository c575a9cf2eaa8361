package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantsync/tenantsync/internal/domain"
)

type pgconnTag = pgconn.CommandTag

// A page's rows reach Postgres as one array per column, inside the
// statement that writes them (unnest): no temp table is COPYed first, so a
// page is one batch of statements, and a page that is not COPYed in bulk is
// one round trip (applyPage). The staging temp tables this replaced cost a
// COPY round trip per table and a truncation at every commit of every
// connection that had one (issue 13).
//
// The change feed (docs/events.md) is written in the page's transaction, and
// only for rows that change: each write statement compares the page with
// the copy, inserts the events and upserts in one statement, whose parts
// all read the copy as it was before it (the CTEs of one statement share
// its snapshot); deletes hand their rows to the events through RETURNING.
// A replayed object (protocol §5.2), a retried page or a full round over an
// unchanged directory therefore adds nothing, and a page that fails adds
// nothing either. The events parameter of each statement is false for a
// store built WithoutDirectoryEvents. Directory events are written with a
// NULL id: their public id is derived from their position
// (migrations/00082_change_event_ids.sql).

// userData is a user's event payload, from a row of the page,
// directory_users or RETURNING with the same columns.
func userData(r string) string {
	return `jsonb_build_object('id', ` + r + `.id::uuid, 'user_principal_name', ` + r + `.user_principal_name,
	'display_name', ` + r + `.display_name, 'given_name', ` + r + `.given_name, 'surname', ` + r + `.surname,
	'mail', ` + r + `.mail, 'job_title', ` + r + `.job_title, 'account_enabled', ` + r + `.account_enabled)`
}

const memberData = `jsonb_build_object('group_id', group_id, 'member_id', member_id)`

// directoryUserWrite writes a page's users ($3–$10, one array per column;
// $11 false leaves the feed out). Events: a user missing from the copy is
// created, or restored when a soft delete was remembered (which is then
// forgotten); one whose attributes differ is updated, or enabled/disabled
// when account_enabled flips, with previous_attributes holding the old
// value of each changed one. The copy is read one index probe per page row
// (LATERAL … LIMIT 1): the page has no statistics, and a join the planner
// is free to choose became a scan of the tenant's whole copy for every
// page, quadratic in its size.
var directoryUserWrite = `
WITH s AS (
	SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[])
		WITH ORDINALITY AS s(id, user_principal_name, display_name, given_name, surname, mail, job_title, account_enabled, ord)
), ev AS (
	SELECT s.ord, CASE
			WHEN d.id IS NULL AND EXISTS (SELECT FROM directory_user_tombstones t WHERE t.tenant_id = $1 AND t.id = s.id::uuid)
				THEN 'user.restored'
			WHEN d.id IS NULL THEN 'user.created'
			WHEN d.account_enabled <> s.account_enabled THEN
				CASE WHEN s.account_enabled THEN 'user.enabled' ELSE 'user.disabled' END
			ELSE 'user.updated' END AS type,
		` + userData("s") + ` || CASE WHEN d.id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('previous_attributes',
			jsonb_strip_nulls(jsonb_build_object(
				'user_principal_name', nullif(d.user_principal_name, s.user_principal_name),
				'display_name', nullif(d.display_name, s.display_name),
				'given_name', nullif(d.given_name, s.given_name),
				'surname', nullif(d.surname, s.surname),
				'mail', nullif(d.mail, s.mail),
				'job_title', nullif(d.job_title, s.job_title),
				'account_enabled', nullif(d.account_enabled, s.account_enabled)))) END AS data
	FROM s
	LEFT JOIN LATERAL (SELECT * FROM directory_users d WHERE d.tenant_id = $1 AND d.id = s.id::uuid LIMIT 1) d ON true
	WHERE $11 AND (d.id IS NULL
		OR (d.user_principal_name, d.display_name, d.given_name, d.surname, d.mail, d.job_title, d.account_enabled)
		<> (s.user_principal_name, s.display_name, s.given_name, s.surname, s.mail, s.job_title, s.account_enabled))
), ` + pageEvents(domain.UserCreated) + `, unburied AS (
	DELETE FROM directory_user_tombstones t USING s WHERE $11 AND t.tenant_id = $1 AND t.id = s.id::uuid
), up AS (
	INSERT INTO directory_users (tenant_id, id, user_principal_name, display_name, given_name, surname, mail, job_title,
		account_enabled, seen_round, updated_at)
	SELECT $1, id::uuid, user_principal_name, display_name, given_name, surname, mail, job_title, account_enabled, $2, now()
	FROM s
	ON CONFLICT (tenant_id, id) DO UPDATE SET
		user_principal_name = EXCLUDED.user_principal_name, display_name = EXCLUDED.display_name,
		given_name = EXCLUDED.given_name, surname = EXCLUDED.surname, mail = EXCLUDED.mail,
		job_title = EXCLUDED.job_title, account_enabled = EXCLUDED.account_enabled,
		seen_round = EXCLUDED.seen_round, updated_at = EXCLUDED.updated_at
	RETURNING 1
)
SELECT count(*) FROM up`

// usersArgs are directoryUserWrite's column arrays.
func usersArgs(users []domain.DirectoryUser) []any {
	n := len(users)
	id, upn, name, given, sur, mail, job := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	enabled := make([]bool, n)
	for i := range users {
		u := &users[i]
		id[i], upn[i], name[i], given[i], sur[i], mail[i], job[i] = u.ID, u.UserPrincipalName, u.DisplayName, u.GivenName, u.Surname, u.Mail, u.JobTitle
		enabled[i] = u.AccountEnabled
	}
	return []any{id, upn, name, given, sur, mail, job, enabled}
}

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
// upserts, deletes of removed users, the checkpoint cp and the page's
// change-feed events; in a round that began on an empty copy, pages are
// COPYed instead (directory_bulk.go). With sweep (the last page of a full
// round) it also deletes every user the round did not see. A failed call
// changes nothing.
func (s *Store) DirectoryUsersApply(ctx context.Context, tenantID string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	if insertPage(c) {
		if res, ok, err := s.insertUsers(ctx, tenantID, p, c); ok || err != nil {
			return res, wrapApply(err, "users", tenantID)
		}
	}
	users, removed := p.Users, p.Removed
	soft := p.SoftDeleted
	if soft == nil {
		soft = []string{}
	}
	events := !s.noEvents
	var res domain.SyncApplied
	cp := c.Checkpoint
	bulkable := mayBulk(c)
	err := s.applyPage(ctx, tenantID, c, bulkable, func(tx pgx.Tx, b *pgx.Batch) error {
		roundBulk := false
		if bulkable {
			var copied bool
			var err error
			roundBulk, copied, err = bulkPage(ctx, tx, b, directoryBulkUsers, tenantID, c, len(users), func() (bool, error) {
				return s.bulkUsers(ctx, tx, tenantID, users, cp.Round)
			})
			if err != nil {
				return err
			}
			if copied {
				res.Upserts += len(users)
				users = nil
			}
		}
		if len(users) > 0 {
			args := append([]any{tenantID, cp.Round}, usersArgs(users)...)
			b.Queue(directoryUserWrite, append(args, events)...).QueryRow(scanAdd(&res.Upserts))
		}
		if len(removed) > 0 {
			b.Queue(directoryUserDelete, tenantID, removed, soft, events).QueryRow(scanAdd(&res.Deletes))
		}
		if c.Sweep && !roundBulk {
			b.Queue(directoryUserSweep, tenantID, cp.Round, events).QueryRow(scanAdd(&res.Deletes))
		}
		return nil
	})
	if err != nil {
		return domain.SyncApplied{}, wrapApply(err, "users", tenantID)
	}
	return res, nil
}

// wrapApply says which page of which tenant err failed, if any.
func wrapApply(err error, resource, tenantID string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("apply %s page of tenant %s: %w", resource, tenantID, err)
}

// scanAdd adds a statement's single count to *n.
func scanAdd(n *int) func(pgx.Row) error {
	return func(row pgx.Row) error {
		var k int
		err := row.Scan(&k)
		*n += k
		return err
	}
}

// groupData is a group's event payload; memberData a membership's (from
// rows with group_id and member_id columns).
func groupData(r string) string {
	return `jsonb_build_object('id', ` + r + `.id::uuid, 'display_name', ` + r + `.display_name, 'description', ` + r + `.description)`
}

// directoryGroupWrite writes a page's groups ($3–$5; $6 false leaves the
// feed out) as directoryUserWrite writes users, group.created or
// group.updated with previous_attributes.
var directoryGroupWrite = `
WITH s AS (
	SELECT * FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS s(id, display_name, description, ord)
), ev AS (
	SELECT s.ord, CASE WHEN d.id IS NULL THEN 'group.created' ELSE 'group.updated' END AS type,
		` + groupData("s") + ` || CASE WHEN d.id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('previous_attributes',
			jsonb_strip_nulls(jsonb_build_object(
				'display_name', nullif(d.display_name, s.display_name),
				'description', nullif(d.description, s.description)))) END AS data
	FROM s
	LEFT JOIN LATERAL (SELECT * FROM directory_groups d WHERE d.tenant_id = $1 AND d.id = s.id::uuid LIMIT 1) d ON true
	WHERE $6 AND (d.id IS NULL OR (d.display_name, d.description) <> (s.display_name, s.description))
), ` + pageEvents(domain.GroupCreated) + `, up AS (
	INSERT INTO directory_groups (tenant_id, id, display_name, description, seen_round, updated_at)
	SELECT $1, id::uuid, display_name, description, $2, now() FROM s
	ON CONFLICT (tenant_id, id) DO UPDATE SET
		display_name = EXCLUDED.display_name, description = EXCLUDED.description,
		seen_round = EXCLUDED.seen_round, updated_at = EXCLUDED.updated_at
	RETURNING 1
)
SELECT count(*) FROM up`

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

var (
	// groupMemberWrite writes a page's members@delta additions ($3, $4:
	// group and member IDs; $5 false leaves the feed out): one
	// group.member_added per membership the copy lacks; the upsert counts
	// only memberships new or not yet seen by this round.
	groupMemberWrite = `
WITH s AS (
	SELECT * FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS s(group_id, member_id, ord)
), ev AS (
	SELECT s.ord, 'group.member_added' AS type,
		jsonb_build_object('group_id', s.group_id::uuid, 'member_id', s.member_id::uuid) AS data
	FROM s
	LEFT JOIN LATERAL (SELECT true AS found FROM group_members g
		WHERE g.tenant_id = $1 AND g.group_id = s.group_id::uuid AND g.member_id = s.member_id::uuid LIMIT 1) g ON true
	WHERE $5 AND g.found IS NULL
), ` + pageEvents(domain.GroupMemberAdded) + `, up AS (
	INSERT INTO group_members (tenant_id, group_id, member_id, seen_round)
	SELECT $1, group_id::uuid, member_id::uuid, $2 FROM s
	ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET seen_round = EXCLUDED.seen_round
	WHERE group_members.seen_round <> EXCLUDED.seen_round
	RETURNING 1
)
SELECT count(*) FROM up`

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
	if insertPage(c) {
		if res, ok, err := s.insertGroups(ctx, tenantID, p, c); ok || err != nil {
			return res, wrapApply(err, "groups", tenantID)
		}
	}
	groups, removed, members, membersRemoved := p.Groups, p.Removed, p.Members, p.MembersRemoved
	events := !s.noEvents
	var res domain.SyncApplied
	cp := c.Checkpoint
	bulkable := mayBulk(c)
	err := s.applyPage(ctx, tenantID, c, bulkable, func(tx pgx.Tx, b *pgx.Batch) error {
		roundBulk := false
		if bulkable {
			var copied bool
			var err error
			roundBulk, copied, err = bulkPage(ctx, tx, b, directoryBulkGroups, tenantID, c, len(groups)+len(members), func() (bool, error) {
				return s.bulkGroups(ctx, tx, tenantID, groups, members, cp.Round)
			})
			if err != nil {
				return err
			}
			if copied {
				res.Upserts += len(groups) + len(members)
				groups, members = nil, nil
			}
		}
		if len(groups) > 0 {
			gid, name, desc := make([]string, len(groups)), make([]string, len(groups)), make([]string, len(groups))
			for i := range groups {
				gid[i], name[i], desc[i] = groups[i].ID, groups[i].DisplayName, groups[i].Description
			}
			b.Queue(directoryGroupWrite, tenantID, cp.Round, gid, name, desc, events).QueryRow(scanAdd(&res.Upserts))
		}
		if len(removed) > 0 {
			b.Queue(directoryGroupDelete, tenantID, removed, events).QueryRow(scanAdd(&res.Deletes))
		}
		if len(members) > 0 {
			gid, mid := make([]string, len(members)), make([]string, len(members))
			for i, m := range members {
				gid[i], mid[i] = m.GroupID, m.MemberID
			}
			b.Queue(groupMemberWrite, tenantID, cp.Round, gid, mid, events).QueryRow(scanAdd(&res.Upserts))
		}
		if len(membersRemoved) > 0 {
			gid, mid := make([]string, len(membersRemoved)), make([]string, len(membersRemoved))
			for i, m := range membersRemoved {
				gid[i], mid[i] = m.GroupID, m.MemberID
			}
			b.Queue(groupMemberDeleteBatch, tenantID, gid, mid, events).QueryRow(scanAdd(&res.Deletes))
		}
		if c.Sweep && !roundBulk {
			// Memberships first, so a reader learns a swept group's members
			// left before the group went.
			b.Queue(groupMemberSweep, tenantID, cp.Round, events).QueryRow(scanAdd(&res.Deletes))
			b.Queue(directoryGroupSweep, tenantID, cp.Round, events).QueryRow(scanAdd(&res.Deletes))
		}
		return nil
	})
	if err != nil {
		return domain.SyncApplied{}, wrapApply(err, "groups", tenantID)
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
