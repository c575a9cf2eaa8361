package postgres

import (
	"context"
	"fmt"
)

const sessionDeleteExpired = `DELETE FROM sessions WHERE expiry < now()`

// SessionDeleteExpired removes expired portal sessions (the table of
// alexedwards/scs pgxstore) and returns how many went.
func (s *Store) SessionDeleteExpired(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, sessionDeleteExpired)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
