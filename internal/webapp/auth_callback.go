package webapp

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
)

// signinTTL bounds one sign-in attempt (Entra's codes live about 10 min,
// protocol §4.4).
const signinTTL = 10 * time.Minute

// signinErrorView is the model of the page for a failed sign-in.
type signinErrorView struct {
	Layout
	// Personal is true for a personal Microsoft account.
	Personal bool
	// Expired is true when the attempt is unknown to this browser or too old.
	Expired bool
	// Code and Description are Entra's error and error_description
	// (untrusted; escaped by the template).
	Code        string
	Description string
}

// authCallback redeems the sign-in code, verifies the ID token and starts a
// fresh session for the user.
func (s *Server) authCallback(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	// The attempt is single use whatever the outcome.
	p, _ := s.sessions.Pop(ctx, keySignIn).(pendingSignIn)
	v := &signinErrorView{Layout: Layout{Title: "Sign-in did not complete"}}
	if p.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1 ||
		s.now().Sub(p.Issued) > signinTTL {
		v.Expired = true
		return s.render(c, http.StatusBadRequest, "signin_error", v)
	}
	if code := q.Get("error"); code != "" {
		v.Code, v.Description = code, q.Get("error_description")
		return s.render(c, http.StatusBadRequest, "signin_error", v)
	}
	if q.Get("code") == "" {
		v.Expired = true
		return s.render(c, http.StatusBadRequest, "signin_error", v)
	}
	id, err := s.signin.Exchange(ctx, q.Get("code"), p.Verifier, p.Nonce)
	switch {
	case errors.Is(err, entra.ErrPersonalAccount):
		v.Title, v.Personal = "Use your work or school account", true
		return s.render(c, http.StatusForbidden, "signin_error", v)
	case errors.Is(err, domain.ErrUnauthorized):
		s.log.Warn("sign-in refused", "err", err)
		return s.render(c, http.StatusUnauthorized, "signin_error", v)
	case err != nil:
		return err
	}
	// A new session ID at sign-in defeats session fixation; the CSRF token
	// is renewed with it, as RenewToken keeps the session's values.
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Put(ctx, keyCSRF, randomToken())
	u := SessionUser{
		TenantID: id.TenantID, ObjectID: id.ObjectID, Username: id.Username, Name: id.Name,
		DirectoryRoles: id.DirectoryRoles, AppRoles: id.AppRoles, SignedInAt: s.now().UTC(),
		Binding: randomToken(),
	}
	s.sessions.Put(ctx, keyUser, u)
	return c.Redirect(http.StatusSeeOther, s.landingFor(u, safeReturn(p.ReturnTo)))
}

// landingFor is where u goes after signing in: the page asked for, except
// that an operator who asked for no particular page (the landing page's
// sign-in returns to /tenant) lands on the console: the operator's own
// organization is the ISV's, never a customer to connect.
func (s *Server) landingFor(u SessionUser, ret string) string {
	if (ret == "/tenant" || ret == "/") && s.isOperator(u) {
		return "/console"
	}
	return ret
}
