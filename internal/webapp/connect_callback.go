package webapp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/onboarding"
)

// connectErrorView is the model of the page explaining a refused or failed
// connection in plain words.
type connectErrorView struct {
	Layout
	Problem onboarding.Problem
	// Code and Description are Entra's error and error_description, shown
	// as received (untrusted; escaped by the template).
	Code        string
	Description string
	// AdminLink is the admin-consent link to send to an administrator.
	AdminLink string
	// SignedInTenant is the organization the user signed in to.
	SignedInTenant string
}

// connectCallback checks the admin-consent redirect and, when it holds,
// records the consent with its verification job, then shows /tenant.
func (s *Server) connectCallback(c echo.Context) error {
	var up *onboarding.User
	u, signedIn := s.currentUser(c)
	if signedIn {
		ou := u.onboardingUser()
		up = &ou
	}
	_, err := s.onboarding.FinishConnect(c.Request().Context(), s.states(c), up, c.QueryParams())
	var ce *onboarding.ConnectError
	if errors.As(err, &ce) {
		v := &connectErrorView{
			Layout:  Layout{Title: "Your organization is not connected"},
			Problem: ce.Problem, Code: ce.Code, Description: ce.Description, AdminLink: ce.AdminLink,
			SignedInTenant: u.TenantID,
		}
		return s.render(c, statusOf(err), "connect_error", v)
	}
	if err != nil {
		return err
	}
	// A query flag rather than a session flash: no extra session write.
	return c.Redirect(http.StatusSeeOther, "/tenant?connected=1")
}

// statusOf returns the status of an error's domain kind (errorKinds).
func statusOf(err error) int {
	for _, k := range errorKinds {
		if errors.Is(err, k.kind) {
			return k.status
		}
	}
	return http.StatusInternalServerError
}
