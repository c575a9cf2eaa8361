package webapp

import (
	"errors"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/operator"
)

// consoleNotices are the fixed messages shown once after an action, keyed
// by the session's consoleFlash.
var consoleNotices = map[string]string{
	"sync":         "Sync requested. It shows under Sync runs once a worker starts it; reload to follow it.",
	"full":         "Full resync requested. It shows under Sync runs once a worker starts it; reload to follow it.",
	"duplicate":    "A sync of this tenant was already queued or running, so no second one was added.",
	"suspended":    "Syncing is suspended: no periodic or requested syncs run until you resume it.",
	"resumed":      "Syncing is resumed.",
	"disconnected": "The tenant is disconnected; its directory copy is being purged.",
}

// consoleConfirmView is the confirmation step of disconnect and purge.
type consoleConfirmView struct {
	Layout
	Tenant domain.Tenant
	Counts domain.DirectoryCounts
}

// consoleTenantSync requests a sync (full=1: a full resync) of the tenant.
func (s *Server) consoleTenantSync(c echo.Context) error {
	u, _ := s.currentUser(c)
	id := c.Param("id")
	full := c.FormValue("full") == "1"
	res, err := s.actions.RequestSync(c.Request().Context(), id, full, operatorActor(u))
	if err != nil {
		return s.consoleActionError(c, id, err)
	}
	done := "sync"
	switch {
	case res.Duplicate:
		done = "duplicate"
	case full:
		done = "full"
	}
	return s.consoleDone(c, id, done)
}

// consoleTenantSuspend suspends the tenant's syncing.
func (s *Server) consoleTenantSuspend(c echo.Context) error { return s.consoleSetSuspended(c, true) }

// consoleTenantResume resumes the tenant's syncing.
func (s *Server) consoleTenantResume(c echo.Context) error { return s.consoleSetSuspended(c, false) }

func (s *Server) consoleSetSuspended(c echo.Context, suspended bool) error {
	u, _ := s.currentUser(c)
	id := c.Param("id")
	if err := s.actions.SetSuspended(c.Request().Context(), id, suspended, operatorActor(u)); err != nil {
		return s.consoleActionError(c, id, err)
	}
	done := "resumed"
	if suspended {
		done = "suspended"
	}
	return s.consoleDone(c, id, done)
}

// consoleTenantDisconnect disconnects the tenant and purges its copy in two
// POSTs: the first (without confirm=yes) shows what will happen and asks.
func (s *Server) consoleTenantDisconnect(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := s.currentUser(c)
	t, err := s.store.TenantGet(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "yes" {
		v := &consoleConfirmView{Layout: Layout{Title: "Disconnect " + t.Name() + "?"}, Tenant: t}
		if v.Counts, err = s.store.DirectoryCounts(ctx, t.ID); err != nil {
			return err
		}
		return s.render(c, http.StatusOK, "console_confirm", v)
	}
	if err := s.actions.Disconnect(ctx, t.ID, operatorActor(u), operator.ReasonOperatorDisconnect); err != nil {
		return s.consoleActionError(c, t.ID, err)
	}
	return s.consoleDone(c, t.ID, "disconnected")
}

// consoleDone keeps the action's notice for the next view of the tenant's
// page and redirects there (post/redirect/get), so a reload shows the page
// without the notice and resends nothing.
func (s *Server) consoleDone(c echo.Context, id, done string) error {
	s.sessions.Put(c.Request().Context(), keyFlash, consoleFlash{TenantID: id, Done: done})
	return c.Redirect(http.StatusSeeOther, "/console/tenants/"+id)
}

// operatorActor names the operator in audit events.
func operatorActor(u SessionUser) string { return u.onboardingUser().Actor() }

// consoleActionError shows a domain conflict (e.g. syncing a pending
// tenant) as a page that says why; other errors go to the error handler.
func (s *Server) consoleActionError(c echo.Context, id string, err error) error {
	if !errors.Is(err, domain.ErrConflict) {
		return err
	}
	// Our own words, e.g. "tenant … is pending; only …".
	msg := domain.Message(err)
	if r, n := utf8.DecodeRuneInString(msg); n > 0 {
		msg = string(unicode.ToUpper(r)) + msg[n:] + "."
	}
	return s.render(c, http.StatusConflict, "console_message", &consoleMessageView{
		Layout: Layout{Title: "Not possible now"}, Status: http.StatusConflict, Heading: "This cannot be done now",
		Message: msg, BackURL: "/console/tenants/" + id, BackText: "Back to the tenant",
	})
}
