package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// eventsListing names the change feed's cursors: a position in the feed,
// good whatever the filters (docs/events.md).
const eventsListing = "events"

// eventCursor is a feed position inside an opaque cursor.
type eventCursor struct {
	Xid uint64 `json:"x"`
	Seq int64  `json:"s"`
}

// eventsPage is one page of the feed: next_cursor is always set, to the
// last event handed out or, on a short page, as far as the feed is known to
// be complete (never behind the position asked for), so a reader polls from
// it.
type eventsPage struct {
	Data       []domain.Event `json:"data"`
	NextCursor string         `json:"next_cursor"`
}

// eventList serves GET /events: the change feed after a cursor, in order and
// without gaps (docs/events.md).
func (a *API) eventList(c echo.Context) error {
	if err := onlyParams(c, "after", "limit", "tenant_id", "type"); err != nil {
		return a.fail(c, err)
	}
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		return a.fail(c, err)
	}
	f := postgres.EventFilter{TenantID: c.QueryParam("tenant_id")}
	if f.TenantID != "" && !domain.IsGUID(f.TenantID) {
		return a.fail(c, errInvalid("tenant_id must be a tenant ID (a GUID)"))
	}
	f.TenantID = strings.ToLower(f.TenantID)
	for _, v := range c.QueryParams()["type"] {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !domain.EventType(t).Valid() {
				return a.fail(c, errInvalid("unknown event type %q; docs/events.md lists the types", t))
			}
			f.Types = append(f.Types, domain.EventType(t))
		}
	}
	ctx := c.Request().Context()
	var pos domain.EventPos
	if cur := c.QueryParam("after"); cur != "" {
		var ec eventCursor
		if err := a.cursors.Decode(eventsListing, cur, &ec); err != nil {
			return a.fail(c, errInvalid("the cursor is not one this API issued for the event feed"))
		}
		pos = domain.EventPos{Xid: ec.Xid, Seq: ec.Seq}
	} else if pos, err = a.store.EventsStart(ctx); err != nil {
		return a.fail(c, err)
	}
	evs, next, err := a.store.EventsPage(ctx, pos, f, limit)
	if err != nil {
		return a.fail(c, err)
	}
	if evs == nil {
		evs = []domain.Event{}
	}
	out := eventsPage{Data: evs, NextCursor: a.cursors.Encode(eventsListing, eventCursor{Xid: next.Xid, Seq: next.Seq})}
	return c.JSON(http.StatusOK, out)
}
