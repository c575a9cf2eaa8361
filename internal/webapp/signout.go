package webapp

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// signout ends the session (POST with CSRF) and returns to the landing page.
func (s *Server) signout(c echo.Context) error {
	if err := s.sessions.Destroy(c.Request().Context()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
