package webapp

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// needsActionLimit bounds the needs-action page; past it, the filtered
// tenant lists page through the rest.
const needsActionLimit = 200

// consoleNeedsActionView is the model of /console/needs-action.
type consoleNeedsActionView struct {
	Layout
	Rows []needsActionRow
	// Total counts every tenant needing its admin; Lists lead to them all.
	Total int
	Lists []overviewStatus
}

// needsActionRow is one tenant and the link to send its admin.
type needsActionRow struct {
	ID, Name    string
	Status      domain.TenantStatus
	Label       string
	StatusClass string
	Words       string
	Reason      string
	Since       time.Time
	ConsentedBy string
	Link        string
}

// consoleNeedsActionList lists the tenants that only their customer's admin
// can bring back (consent revoked, permissions missing), each with the
// portal's connect link for that tenant: the admin who opens it signs in,
// consents again, and the tenant is verified as on its first connection.
func (s *Server) consoleNeedsActionList(c echo.Context) error {
	ctx := c.Request().Context()
	ts, err := s.store.TenantListNeedsAdmin(ctx, needsActionLimit)
	if err != nil {
		return err
	}
	counts, err := s.store.TenantCountByStatus(ctx)
	if err != nil {
		return err
	}
	link := AdminLink(s.cfg.PublicBaseURL)
	v := &consoleNeedsActionView{Layout: Layout{Title: "Needs customer action"}}
	for _, st := range domain.TenantStatuses {
		if st.NeedsAdmin() {
			n := int(counts[string(st)])
			v.Total += n
			v.Lists = append(v.Lists, overviewStatus{Status: st, Label: statusLabel[st], StatusClass: statusClass[st], N: n, URL: tenantListURL(st)})
		}
	}
	for _, t := range ts {
		v.Rows = append(v.Rows, needsActionRow{ID: t.ID, Name: t.Name(), Status: t.Status, Label: statusLabel[t.Status],
			StatusClass: statusClass[t.Status], Words: t.Status.Describe(), Reason: t.StatusReason, Since: t.StatusChangedAt,
			ConsentedBy: t.ConsentedBy, Link: link(t.ID)})
	}
	return s.render(c, http.StatusOK, "console_needs_action", v)
}
