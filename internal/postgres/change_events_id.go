package postgres

import (
	"strconv"
	"strings"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// eventIDPos decodes the position a derived event id holds (the layout of
// change_event_id in migrations/00082_change_event_ids.sql); ok is false
// for any other string, a stored (version-4) id among them.
func eventIDPos(id string) (domain.EventPos, bool) {
	h := strings.ToLower(strings.ReplaceAll(id, "-", ""))
	if len(h) != 32 || h[12] != '8' || h[16] != '8' {
		return domain.EventPos{}, false
	}
	xid, err := strconv.ParseUint(h[:12]+h[13:16], 16, 64)
	if err != nil {
		return domain.EventPos{}, false
	}
	seq, err := strconv.ParseInt(h[17:], 16, 64)
	if err != nil {
		return domain.EventPos{}, false
	}
	return domain.EventPos{Xid: xid, Seq: seq}, true
}
