package webapp

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// landingView is the model of the landing page.
type landingView struct {
	Layout
}

// landingShow explains what connecting does and starts it.
func (s *Server) landingShow(c echo.Context) error {
	return s.render(c, http.StatusOK, "landing", &landingView{Layout: Layout{Title: "Connect your organization"}})
}
