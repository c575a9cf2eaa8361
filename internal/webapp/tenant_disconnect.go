package webapp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
)

// disconnectConfirmView is the model of the confirmation step.
type disconnectConfirmView struct {
	Layout
	Tenant domain.Tenant
}

// disconnectDoneView is the model of the page after disconnecting: it tells
// the admin how to remove the enterprise app in their tenant.
type disconnectDoneView struct {
	Layout
	Tenant   domain.Tenant
	ClientID string
}

// tenantDisconnect disconnects the user's organization in two POSTs: the
// first (without confirm=yes) asks for confirmation, the second marks it
// disconnected and enqueues the purge. Both carry the CSRF token.
func (s *Server) tenantDisconnect(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := s.currentUser(c)
	if !u.IsAdmin() {
		v := &connectErrorView{Layout: Layout{Title: "Only an administrator can disconnect"},
			Problem: onboarding.ProblemNotAdminToRemove, SignedInTenant: u.TenantID}
		return s.render(c, http.StatusForbidden, "connect_error", v)
	}
	t, err := s.store.TenantGet(ctx, u.TenantID)
	if err != nil {
		return err
	}
	if t.Status == domain.TenantDisconnected {
		return c.Redirect(http.StatusSeeOther, "/tenant")
	}
	if c.FormValue("confirm") != "yes" {
		return s.render(c, http.StatusOK, "disconnect_confirm",
			&disconnectConfirmView{Layout: Layout{Title: "Disconnect your organization?"}, Tenant: t})
	}
	ou := u.onboardingUser()
	if err := s.onboarding.Disconnect(ctx, &ou); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return c.Redirect(http.StatusSeeOther, "/tenant")
		}
		return err
	}
	return s.render(c, http.StatusOK, "disconnect_done",
		&disconnectDoneView{Layout: Layout{Title: "Your organization is disconnected"}, Tenant: t, ClientID: s.cfg.ClientID})
}
