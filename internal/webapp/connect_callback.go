package webapp

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/api"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/postgres"
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
	// AdminLink is the portal link to send to an administrator.
	AdminLink string
	// SignedInTenant is the organization the user signed in to.
	SignedInTenant string
	// NoDirectoryRoles is true when the user's ID token carried no wids at
	// all: the app registration may lack its groupMembershipClaims setting.
	NoDirectoryRoles bool
	// LinkTenant and SwitchLink serve ProblemSwitchAccount: the
	// organization of the admin link, and the sign-in with another account.
	LinkTenant string
	SwitchLink string
}

// refusedView is the page of a refused connect for the signed-in user u.
func refusedView(refused *onboarding.ConnectError, u SessionUser) *connectErrorView {
	return &connectErrorView{
		Layout:  Layout{Title: "Your organization is not connected"},
		Problem: refused.Problem, Code: refused.Code, Description: refused.Description, AdminLink: refused.AdminLink,
		SignedInTenant:   u.TenantID,
		NoDirectoryRoles: refused.Problem == onboarding.ProblemNeedsAdmin && u.TenantID != "" && len(u.DirectoryRoles) == 0,
	}
}

// connectCallback checks the admin-consent redirect and, when it holds,
// records the consent with its verification job, then shows /tenant.
// Everything the callback writes shares one transaction and one commit; a
// refused callback commits only the consumed state.
func (s *Server) connectCallback(c echo.Context) error {
	ctx := c.Request().Context()
	var up *onboarding.User
	u, signedIn := s.currentUser(c)
	if signedIn {
		ou := u.onboardingUser()
		up = &ou
	}
	var refused *onboarding.ConnectError
	err := s.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		cb := callbackTx{tx: tx, store: st, jobs: s.cfg.Jobs, binding: u.Binding}
		_, err := s.onboarding.FinishConnect(ctx, cb, up, c.QueryParams())
		if errors.As(err, &refused) {
			return nil // commit the taken state: it is single-use whatever the outcome
		}
		return err
	})
	if err != nil {
		// Rolled back: spend the state on its own so that it stays
		// single-use (only spent, so no window is needed).
		if state := c.QueryParam("state"); state != "" {
			if _, terr := s.store.ConnectStateTake(context.WithoutCancel(ctx), state, u.Binding, time.Time{}, time.Time{}); terr != nil {
				s.log.ErrorContext(ctx, "consume connect state after a failed callback", "err", terr)
			}
		}
		return err
	}
	if refused != nil {
		return s.render(c, api.StatusOf(refused), "connect_error", refusedView(refused, u))
	}
	// A query flag rather than a session flash: no extra session write.
	return c.Redirect(http.StatusSeeOther, "/tenant?connected=1")
}
