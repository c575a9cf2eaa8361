package webapp

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// consoleWebhookReplay hands an endpoint the feed again from one event on
// (the form's event_id): the dispatcher delivers that event and every
// later one once more, each tenant's in order.
func (s *Server) consoleWebhookReplay(c echo.Context) error {
	id, event := c.Param("id"), c.FormValue("event_id")
	if !domain.IsGUID(id) || !domain.IsGUID(event) {
		return fmt.Errorf("webhook endpoint %q, event %q: %w", id, event, domain.ErrNotFound)
	}
	if err := s.store.WebhookEndpointReplayFrom(c.Request().Context(), id, event); err != nil {
		return err
	}
	s.sessions.Put(c.Request().Context(), keyFlash, consoleFlash{Done: "replayed"})
	return c.Redirect(http.StatusSeeOther, "/console/webhooks")
}
