package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// DirectoryPage selects a page of a tenant's directory copy in ID order.
type DirectoryPage struct {
	After string // the last ID of the previous page; "" = first page
	Limit int    // 1–1000; 0 = 100
}

func (p *DirectoryPage) check(tenantID string) error {
	if !domain.IsGUID(tenantID) {
		return fmt.Errorf("directory of tenant %q: %w", tenantID, domain.ErrNotFound)
	}
	switch {
	case p.Limit == 0:
		p.Limit = 100
	case p.Limit < 1 || p.Limit > 1000:
		return domain.Invalidf("limit must be between 1 and 1000")
	}
	if p.After != "" && !domain.IsGUID(p.After) {
		return domain.Invalidf("malformed cursor")
	}
	if p.After == "" {
		p.After = "00000000-0000-0000-0000-000000000000"
	}
	return nil
}

// The select list's id::text is also named id; ORDER BY takes an output
// column before an input one, so the table's uuid column is named in full
// (else every page sorts the tenant's users as text: 12 ms instead of 0.3).
const directoryUserPage = `
SELECT tenant_id::text, id::text, user_principal_name, display_name, given_name, surname, mail, job_title, account_enabled
FROM directory_users WHERE tenant_id = $1 AND id > $2::uuid ORDER BY directory_users.id LIMIT $3`

// DirectoryUserList returns a page of a tenant's users and whether more follow.
func (s *Store) DirectoryUserList(ctx context.Context, tenantID string, p DirectoryPage) ([]domain.DirectoryUser, bool, error) {
	if err := p.check(tenantID); err != nil {
		return nil, false, err
	}
	rows, err := s.db.Query(ctx, directoryUserPage, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("users of tenant %s: %w", tenantID, err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.DirectoryUser])
	if err != nil {
		return nil, false, fmt.Errorf("users of tenant %s: %w", tenantID, err)
	}
	if len(users) > p.Limit {
		return users[:p.Limit], true, nil
	}
	return users, false, nil
}

const directoryGroupPage = `
SELECT tenant_id::text, id::text, display_name, description
FROM directory_groups WHERE tenant_id = $1 AND id > $2::uuid ORDER BY directory_groups.id LIMIT $3`

// DirectoryGroupList returns a page of a tenant's groups and whether more follow.
func (s *Store) DirectoryGroupList(ctx context.Context, tenantID string, p DirectoryPage) ([]domain.Group, bool, error) {
	if err := p.check(tenantID); err != nil {
		return nil, false, err
	}
	rows, err := s.db.Query(ctx, directoryGroupPage, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("groups of tenant %s: %w", tenantID, err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Group])
	if err != nil {
		return nil, false, fmt.Errorf("groups of tenant %s: %w", tenantID, err)
	}
	if len(groups) > p.Limit {
		return groups[:p.Limit], true, nil
	}
	return groups, false, nil
}
