package webapp

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// connectStart sends the signed-in user to the admin-consent page of their
// own organization with a fresh single-use state.
func (s *Server) connectStart(c echo.Context) error {
	u, _ := s.currentUser(c)
	to, err := s.onboarding.BeginConnect(c.Request().Context(), s.states(c), u.onboardingUser())
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, to)
}
