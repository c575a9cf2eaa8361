package webapp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// refreshSeconds is how often /tenant updates itself while something is
// under way.
const refreshSeconds = 5

// tenantView is the model of the signed-in user's organization page.
type tenantView struct {
	Layout
	// Connected is false when the organization never connected.
	Connected bool
	Tenant    domain.Tenant
	// Heading is the organization's name once Microsoft told it (the
	// worker reads it when it verifies the consent); until then a phrase,
	// never the raw tenant ID, which the facts list shows.
	Heading string
	// Status is the status in words; StatusLabel names it on the badge, as
	// the console does; StatusClass picks its badge style.
	Status      string
	StatusLabel string
	StatusClass string
	// Reconnect is true when only a new admin consent fixes the state.
	Reconnect    bool
	Disconnected bool
	// IsAdmin allows the disconnect button.
	IsAdmin bool
	Counts  domain.DirectoryCounts
	// LastRun is the newest sync run, if any; Running says it is under way.
	LastRun *domain.SyncRun
	Running bool
	Events  []domain.TenantEvent
}

var statusClass = map[domain.TenantStatus]string{
	domain.TenantPending:                 "pending",
	domain.TenantActive:                  "ok",
	domain.TenantFailing:                 "warn",
	domain.TenantConsentRevoked:          "bad",
	domain.TenantInsufficientPermissions: "bad",
	domain.TenantDisconnected:            "off",
}

// tenantShow shows the signed-in user's organization: status, consent,
// sync progress and counts.
func (s *Server) tenantShow(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := s.currentUser(c)
	v := &tenantView{Layout: Layout{Title: "Your organization", User: &u}, IsAdmin: u.IsAdmin()}
	t, err := s.store.TenantGet(ctx, u.TenantID)
	if errors.Is(err, domain.ErrNotFound) {
		return s.render(c, http.StatusOK, "tenant", v)
	}
	if err != nil {
		return err
	}
	v.Connected, v.Tenant, v.Heading = true, t, t.DisplayName
	if v.Heading == "" {
		v.Heading = "Your organization"
	}
	v.Status, v.StatusLabel, v.StatusClass = t.Status.Describe(), statusLabel[t.Status], statusClass[t.Status]
	v.Reconnect = t.Status.NeedsAdmin()
	v.Disconnected = t.Status == domain.TenantDisconnected
	if v.Counts, err = s.store.DirectoryCounts(ctx, t.ID); err != nil {
		return err
	}
	runs, err := s.store.SyncRunList(ctx, t.ID, 1)
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		v.LastRun = &runs[0]
		v.Running = runs[0].Outcome == domain.SyncRunning
	}
	if v.Events, err = s.store.TenantEvents(ctx, t.ID, 5); err != nil {
		return err
	}
	if t.Status == domain.TenantPending && c.QueryParam("connected") == "1" {
		v.Notice = "Consent received. We are confirming it with Microsoft; this page updates by itself."
	}
	if t.Status == domain.TenantPending || v.Running {
		v.RefreshSeconds = refreshSeconds
	}
	return s.render(c, http.StatusOK, "tenant", v)
}
