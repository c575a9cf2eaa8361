package webapp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/api"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
)

// connectStart sends a signed-in Global or Privileged Role Administrator to
// the admin-consent page of their own organization with a fresh single-use
// state; anyone else gets the needs-admin page and no state. With
// ?tenant= (the link a user sends to an administrator) it first makes the
// visitor sign in to that organization.
func (s *Server) connectStart(c echo.Context) error {
	want := c.QueryParam("tenant")
	if want != "" && !domain.IsGUID(want) {
		return domain.ErrInvalid
	}
	want = strings.ToLower(want)
	u, ok := s.currentUser(c)
	if !ok {
		return c.Redirect(http.StatusSeeOther, "/signin?return="+url.QueryEscape(connectPath(want)))
	}
	if want != "" && want != u.TenantID {
		return s.render(c, http.StatusOK, "connect_error", &connectErrorView{
			Layout:  Layout{Title: "Sign in to the organization to connect"},
			Problem: onboarding.ProblemSwitchAccount, SignedInTenant: u.TenantID, LinkTenant: want,
			SwitchLink: "/signin?account=select&return=" + url.QueryEscape(connectPath(want)),
		})
	}
	to, err := s.onboarding.BeginConnect(c.Request().Context(), s.states(c), u.onboardingUser())
	var refused *onboarding.ConnectError
	if errors.As(err, &refused) {
		if len(u.DirectoryRoles) == 0 {
			// Every admin looks like this when the app registration does
			// not emit wids (protocol §4.6): the operator must hear of it.
			s.log.WarnContext(c.Request().Context(), "connect refused: the ID token carried no directory roles (wids); "+
				"the app registration needs groupMembershipClaims DirectoryRole or All", "tenant_id", u.TenantID)
		}
		return s.render(c, api.StatusOf(refused), "connect_error", refusedView(refused, u))
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, to)
}
