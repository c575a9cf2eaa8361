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

// A removed user leaves every group too (protocol §5.3 reports that as
// members@delta removals as well; deleting here keeps the copy consistent
// even when the two rounds disagree for a while).
const (
	directoryUserMembershipsDelete = `DELETE FROM group_members WHERE tenant_id = $1 AND member_id = ANY($2::uuid[])`
	directoryUserDelete            = `DELETE FROM directory_users WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	directoryUserSweep             = `
WITH gone AS (DELETE FROM directory_users WHERE tenant_id = $1 AND seen_round < $2 RETURNING id),
memberships AS (DELETE FROM group_members g USING gone WHERE g.tenant_id = $1 AND g.member_id = gone.id)
SELECT count(*) FROM gone`
)

// DirectoryUsersApply applies one users/delta page in one transaction:
// upserts (COPY into a temp table, then one INSERT … ON CONFLICT), deletes
// of removed users, and the checkpoint cp. With sweep (the last page of a
// full round) it also deletes every user the round did not see. A failed
// call changes nothing.
func (s *Store) DirectoryUsersApply(ctx context.Context, tenantID string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	users, removed := p.Users, p.Removed
	var res domain.SyncApplied
	cp := c.Checkpoint
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		if err := stage(ctx, tx, syncUsersTemp, "sync_users", syncUsersColumns, len(users), func(i int) []any {
			u := &users[i]
			return []any{u.ID, u.UserPrincipalName, u.DisplayName, u.GivenName, u.Surname, u.Mail, u.JobTitle, u.AccountEnabled}
		}); err != nil {
			return err
		}
		b := &pgx.Batch{}
		s.queueCommit(b, tenantID, c)
		if len(users) > 0 {
			b.Queue(directoryUserUpsertBatch, tenantID, cp.Round).Exec(func(tag pgconnTag) error {
				res.Upserts += int(tag.RowsAffected())
				return nil
			})
		}
		if len(removed) > 0 {
			b.Queue(directoryUserMembershipsDelete, tenantID, removed)
			b.Queue(directoryUserDelete, tenantID, removed).Exec(func(tag pgconnTag) error {
				res.Deletes += int(tag.RowsAffected())
				return nil
			})
		}
		if c.Sweep {
			b.Queue(directoryUserSweep, tenantID, cp.Round).QueryRow(func(row pgx.Row) error {
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

const (
	directoryGroupUpsertBatch = `
INSERT INTO directory_groups (tenant_id, id, display_name, description, seen_round, updated_at)
SELECT $1, id::uuid, display_name, description, $2, now() FROM sync_groups
ON CONFLICT (tenant_id, id) DO UPDATE SET
	display_name = EXCLUDED.display_name, description = EXCLUDED.description,
	seen_round = EXCLUDED.seen_round, updated_at = EXCLUDED.updated_at`
	directoryGroupMembershipsDelete = `DELETE FROM group_members WHERE tenant_id = $1 AND group_id = ANY($2::uuid[])`
	directoryGroupDelete            = `DELETE FROM directory_groups WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	groupMemberUpsertBatch          = `
INSERT INTO group_members (tenant_id, group_id, member_id, seen_round)
SELECT $1, group_id::uuid, member_id::uuid, $2 FROM sync_members
ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET seen_round = EXCLUDED.seen_round
WHERE group_members.seen_round <> EXCLUDED.seen_round`
	groupMemberDeleteBatch = `
DELETE FROM group_members g USING unnest($2::uuid[], $3::uuid[]) AS r(group_id, member_id)
WHERE g.tenant_id = $1 AND g.group_id = r.group_id AND g.member_id = r.member_id`
	directoryGroupSweep = `
WITH gone AS (DELETE FROM directory_groups WHERE tenant_id = $1 AND seen_round < $2 RETURNING id)
SELECT count(*) FROM gone`
	groupMemberSweep = `DELETE FROM group_members WHERE tenant_id = $1 AND seen_round < $2`
)

// DirectoryGroupsApply applies one groups/delta page in one transaction:
// group upserts and deletes, members@delta additions and removals, and the
// checkpoint; with sweep it deletes the groups and memberships the full
// round did not see. A failed call changes nothing.
func (s *Store) DirectoryGroupsApply(ctx context.Context, tenantID string, p *domain.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	groups, removed, members, membersRemoved := p.Groups, p.Removed, p.Members, p.MembersRemoved
	var res domain.SyncApplied
	cp := c.Checkpoint
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
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
		b := &pgx.Batch{}
		s.queueCommit(b, tenantID, c)
		count := func(n *int) func(pgconnTag) error {
			return func(tag pgconnTag) error { *n += int(tag.RowsAffected()); return nil }
		}
		if len(groups) > 0 {
			b.Queue(directoryGroupUpsertBatch, tenantID, cp.Round).Exec(count(&res.Upserts))
		}
		if len(removed) > 0 {
			b.Queue(directoryGroupMembershipsDelete, tenantID, removed)
			b.Queue(directoryGroupDelete, tenantID, removed).Exec(count(&res.Deletes))
		}
		if len(members) > 0 {
			b.Queue(groupMemberUpsertBatch, tenantID, cp.Round).Exec(count(&res.Upserts))
		}
		if len(membersRemoved) > 0 {
			gids := make([]string, len(membersRemoved))
			mids := make([]string, len(membersRemoved))
			for i, m := range membersRemoved {
				gids[i], mids[i] = m.GroupID, m.MemberID
			}
			b.Queue(groupMemberDeleteBatch, tenantID, gids, mids).Exec(count(&res.Deletes))
		}
		if c.Sweep {
			b.Queue(directoryGroupSweep, tenantID, cp.Round).QueryRow(func(row pgx.Row) error {
				var n int
				err := row.Scan(&n)
				res.Deletes += n
				return err
			})
			b.Queue(groupMemberSweep, tenantID, cp.Round).Exec(count(&res.Deletes))
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

// DirectoryPurge deletes a tenant's directory copy and its sync
// checkpoints (the history in sync_runs stays), in one transaction.
func (s *Store) DirectoryPurge(ctx context.Context, tenantID string) error {
	err := s.Tx(ctx, func(tx pgx.Tx, _ *Store) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM group_members WHERE tenant_id = $1`, tenantID)
		b.Queue(`DELETE FROM directory_groups WHERE tenant_id = $1`, tenantID)
		b.Queue(`DELETE FROM directory_users WHERE tenant_id = $1`, tenantID)
		b.Queue(`DELETE FROM sync_state WHERE tenant_id = $1`, tenantID)
		// The sizes on the tenant row describe the copy, which is now empty.
		b.Queue(`UPDATE tenants SET user_count = 0, group_count = 0 WHERE id = $1`, tenantID)
		return tx.SendBatch(ctx, b).Close()
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
