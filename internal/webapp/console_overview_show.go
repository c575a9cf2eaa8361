package webapp

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// How much of each list the overview shows; the full lists are a link away.
const (
	overviewAttentionLimit = 20
	overviewWorstLag       = 10
)

// consoleOverviewView is the model of /console, the operator's home: the
// whole fleet at a glance.
type consoleOverviewView struct {
	Layout
	Total    int
	Statuses []overviewStatus
	// Attention lists tenants failing or needing their customer's admin;
	// AttentionTotal counts them all, AttentionLinks lead to the full lists.
	Attention      []overviewAttention
	AttentionTotal int
	AttentionLinks []overviewStatus
	NeedsAdmin     int
	// Lag of active tenants that sync, in words.
	LagTenants int
	LagP50     string
	LagP95     string
	Worst      []overviewLag
	// The run window: its start, the totals and the hourly chart.
	Since        time.Time
	Runs         postgres.RunTotals
	ThrottledNow int
	Chart        *runsChart
	Queue        []postgres.QueueDepth
	QueueTotal   postgres.QueueDepth
	// Notify counts the tenants that sync by change-notification state:
	// near-real-time first, then periodic by reason (issue 17).
	Notify       []overviewNotify
	NotifyTotal  int
	NearRealTime int
}

// overviewNotify is how many syncing tenants share one notification state
// and reason.
type overviewNotify struct {
	State        domain.NotificationState
	Reason       string
	Label, Class string
	N            int
}

// overviewStatus is one status with its count and filtered list.
type overviewStatus struct {
	Status      domain.TenantStatus
	Label       string
	StatusClass string
	N           int
	URL         string
}

// overviewAttention is one tenant that needs an operator or its admin.
type overviewAttention struct {
	ID, Name    string
	Label       string
	StatusClass string
	Status      domain.TenantStatus
	Reason      string
	Since       time.Time
	NeedsAdmin  bool
}

// overviewLag is one of the active tenants synced longest ago.
type overviewLag struct {
	postgres.LaggingTenant
	Name string
	Lag  string
}

// consoleOverviewShow is /console. Old bookmarks of the tenant list, which
// lived here with its query, go to /console/tenants with the query kept.
func (s *Server) consoleOverviewShow(c echo.Context) error {
	q := c.QueryParams()
	for _, k := range []string{"q", "status", "sort", "after"} {
		if q.Has(k) {
			return c.Redirect(http.StatusMovedPermanently, "/console/tenants?"+c.Request().URL.RawQuery)
		}
	}
	now := s.now()
	o, err := s.store.FleetOverview(c.Request().Context(), now, overviewAttentionLimit, overviewWorstLag)
	if err != nil {
		return err
	}
	notify, err := s.store.NotificationCounts(c.Request().Context())
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "console_overview", newOverviewView(o, notify))
}

// newOverviewView puts the overview and the notification counts into words
// and links.
func newOverviewView(o postgres.FleetOverview, notify []postgres.NotificationCount) *consoleOverviewView {
	v := &consoleOverviewView{Layout: Layout{Title: "Operator console"}, Since: o.Since, Runs: o.Runs,
		ThrottledNow: o.ThrottledNow, Queue: o.Queue, LagTenants: o.Lag.Tenants}
	for _, st := range domain.TenantStatuses {
		row := overviewStatus{Status: st, Label: statusLabel[st], StatusClass: statusClass[st], N: o.ByStatus[st],
			URL: tenantListURL(st)}
		v.Statuses = append(v.Statuses, row)
		v.Total += row.N
		if st == domain.TenantFailing || st.NeedsAdmin() {
			v.AttentionTotal += row.N
			v.AttentionLinks = append(v.AttentionLinks, row)
		}
		if st.NeedsAdmin() {
			v.NeedsAdmin += row.N
		}
	}
	for _, t := range o.Attention {
		v.Attention = append(v.Attention, overviewAttention{ID: t.ID, Name: t.Name(), Label: statusLabel[t.Status],
			StatusClass: statusClass[t.Status], Status: t.Status, Reason: t.StatusReason, Since: t.StatusChangedAt,
			NeedsAdmin: t.Status.NeedsAdmin()})
	}
	if o.Lag.Tenants > 0 {
		v.LagP50, v.LagP95 = formatLag(o.Lag.P50), formatLag(o.Lag.P95)
	}
	for _, w := range o.Lag.Worst {
		name := w.DisplayName
		if name == "" {
			name = w.ID
		}
		v.Worst = append(v.Worst, overviewLag{LaggingTenant: w, Name: name, Lag: formatLag(w.Lag)})
	}
	for _, q := range o.Queue {
		v.QueueTotal.Available += q.Available
		v.QueueTotal.Scheduled += q.Scheduled
		v.QueueTotal.Retryable += q.Retryable
		v.QueueTotal.Running += q.Running
	}
	v.Chart = newRunsChart(o.Hours)
	for _, n := range notify {
		st := newConsoleNotify(postgres.NotificationStatus{State: n.State, Reason: n.Reason})
		row := overviewNotify{State: n.State, Reason: n.Reason, Label: st.Label, Class: st.Class, N: n.N}
		if n.State == domain.NotificationsPeriodic {
			row.Label = "Periodic: " + notifyReasonLabel[n.Reason]
			if _, ok := notifyReasonLabel[n.Reason]; !ok {
				row.Label = "Periodic: " + n.Reason
			}
		}
		if n.State == domain.NotificationsSubscribed {
			v.NearRealTime += n.N
		}
		v.NotifyTotal += n.N
		v.Notify = append(v.Notify, row)
	}
	return v
}

// tenantListURL is the tenant list filtered to one status.
func tenantListURL(st domain.TenantStatus) string {
	return "/console/tenants?" + url.Values{"status": {string(st)}}.Encode()
}

// formatLag says a lag the way people read it: the two largest units.
func formatLag(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		return fmt.Sprintf("%d h %d min", h, int(d.Minutes())-60*h)
	default:
		days := int(d.Hours()) / 24
		return fmt.Sprintf("%d d %d h", days, int(d.Hours())-24*days)
	}
}
