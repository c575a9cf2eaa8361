package webapp

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz says the process is up.
func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// readyz says the database answers and its schema is current.
func (s *Server) readyz(c echo.Context) error {
	if err := s.ready.Check(c.Request().Context()); err != nil {
		s.log.Warn("not ready", "err", err)
		return c.String(http.StatusServiceUnavailable, "not ready\n")
	}
	return c.String(http.StatusOK, "ok\n")
}
