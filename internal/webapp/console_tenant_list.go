package webapp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/cursor"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// consolePageSize is the number of tenants per console page.
const consolePageSize = 50

// consoleOption is one choice of a select box.
type consoleOption struct {
	Value, Label string
	Selected     bool
}

// consoleTenantRow is one tenant of the list.
type consoleTenantRow struct {
	domain.Tenant
	// Status is the status in a few words; StatusClass picks its badge.
	Status      string
	StatusClass string
	// Domains is the first verified domains, joined; MoreDomains counts the rest.
	Domains     string
	MoreDomains int
}

// consoleTenantsView is the model of /console/tenants.
type consoleTenantsView struct {
	Layout
	Query    string
	Statuses []consoleOption
	Sorts    []consoleOption
	Rows     []consoleTenantRow
	// Filtered is true when a query or status narrows the list.
	Filtered bool
	// Later is true past the first page; FirstURL goes back to it.
	Later    bool
	FirstURL string
	// NextURL is the next page, empty on the last.
	NextURL string
}

// statusLabel says each status in a few words for lists.
var statusLabel = map[domain.TenantStatus]string{
	domain.TenantPending:                 "Connecting",
	domain.TenantActive:                  "Active",
	domain.TenantFailing:                 "Failing",
	domain.TenantConsentRevoked:          "Consent revoked",
	domain.TenantInsufficientPermissions: "Missing permissions",
	domain.TenantDisconnected:            "Disconnected",
}

// sortLabel describes each order of the list.
var sortLabel = map[postgres.TenantSort]string{
	postgres.SortCreated:  "Newest first",
	postgres.SortLastSync: "Last sync, oldest first",
	postgres.SortFailures: "Most failures first",
	postgres.SortSize:     "Most users first",
	postgres.SortName:     "Name, A to Z",
}

// consoleSorts is the order of the sort choices on the page.
var consoleSorts = []postgres.TenantSort{
	postgres.SortCreated, postgres.SortLastSync, postgres.SortFailures, postgres.SortSize, postgres.SortName,
}

// consoleTenantList lists tenants: search by name, domain or ID, filter by
// status, sort, and keyset pages through an opaque cursor.
func (s *Server) consoleTenantList(c echo.Context) error {
	u, _ := s.currentUser(c)
	q := strings.TrimSpace(c.QueryParam("q"))
	if len(q) > 256 {
		return s.consoleBadRequest(c, "The search is too long", "Search for a name, a domain or a tenant ID.")
	}
	status := domain.TenantStatus(c.QueryParam("status"))
	if status != "" && !status.Valid() {
		return s.consoleBadRequest(c, "Unknown status", "Choose a status from the list.")
	}
	sort := postgres.TenantSort(c.QueryParam("sort"))
	if sort == "" {
		sort = postgres.SortCreated
	}
	if _, ok := sortLabel[sort]; !ok {
		return s.consoleBadRequest(c, "Unknown order", "Choose an order from the list.")
	}
	listing := consoleListing(q, status, sort)
	cc := cursor.New("tenantsync console cursor", u.Binding)
	f := postgres.TenantFilter{Query: q, Status: status, Sort: sort, Limit: consolePageSize}
	if after := c.QueryParam("after"); after != "" {
		var cur postgres.TenantCursor
		if err := cc.Decode(listing, after, &cur); err != nil {
			return s.consoleBadRequest(c, "This page link is not valid",
				"The link to the next page was changed, belongs to another search or to an earlier sign-in. Start again from the first page.")
		}
		f.After = &cur
	}
	page, err := s.store.TenantList(c.Request().Context(), f)
	if errors.Is(err, domain.ErrInvalid) {
		return s.consoleBadRequest(c, "This page link is not valid", "Start again from the first page.")
	}
	if err != nil {
		return err
	}

	v := &consoleTenantsView{Layout: Layout{Title: "Tenants"}, Query: q, Filtered: q != "" || status != "", Later: f.After != nil}
	v.Statuses = append(v.Statuses, consoleOption{Value: "", Label: "Any status", Selected: status == ""})
	for _, st := range domain.TenantStatuses {
		v.Statuses = append(v.Statuses, consoleOption{Value: string(st), Label: statusLabel[st], Selected: st == status})
	}
	for _, so := range consoleSorts {
		v.Sorts = append(v.Sorts, consoleOption{Value: string(so), Label: sortLabel[so], Selected: so == sort})
	}
	for _, t := range page.Tenants {
		r := consoleTenantRow{Tenant: t, Status: statusLabel[t.Status], StatusClass: statusClass[t.Status]}
		shown := t.Domains
		if len(shown) > 2 {
			shown, r.MoreDomains = shown[:2], len(shown)-2
		}
		r.Domains = strings.Join(shown, ", ")
		v.Rows = append(v.Rows, r)
	}
	params := url.Values{}
	if q != "" {
		params.Set("q", q)
	}
	if status != "" {
		params.Set("status", string(status))
	}
	if sort != postgres.SortCreated {
		params.Set("sort", string(sort))
	}
	v.FirstURL = "/console/tenants"
	if len(params) > 0 {
		v.FirstURL += "?" + params.Encode()
	}
	if page.Next != nil {
		params.Set("after", cc.Encode(listing, *page.Next))
		v.NextURL = "/console/tenants?" + params.Encode()
	}
	return s.render(c, http.StatusOK, "console_tenants", v)
}

// consoleListing names one listing, so that a cursor of one search cannot
// page another.
func consoleListing(q string, status domain.TenantStatus, sort postgres.TenantSort) string {
	return string(sort) + "\x00" + string(status) + "\x00" + q
}

// consoleBadRequest renders a 400 page with a way back to the list.
func (s *Server) consoleBadRequest(c echo.Context, heading, msg string) error {
	return s.render(c, http.StatusBadRequest, "console_message", &consoleMessageView{
		Layout: Layout{Title: heading}, Status: http.StatusBadRequest, Heading: heading, Message: msg,
		BackURL: "/console/tenants", BackText: "All tenants",
	})
}
