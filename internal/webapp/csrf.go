package webapp

import (
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
)

// csrfField and csrfHeader are the only places a CSRF token is read from:
// never the query string, which leaks into logs, history and Referer.
const (
	csrfField  = "_csrf"
	csrfHeader = "X-CSRF-Token"
)

// csrf checks every unsafe request against the token kept in the
// server-side session (keyCSRF), so a token is worth nothing outside the
// session it was issued to, and a cookie planted by a neighbouring site
// cannot stand in for it, as it could for a double-submit cookie. The
// token is created at sign-in, with the renewed session (authCallback),
// and dies with the session at sign-out; a signed-in session from before
// it existed gets one on its next page. Pages read it as c.Get("csrf").
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ctx := r.Context()
		tok := s.sessions.GetString(ctx, keyCSRF)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			if _, ok := s.currentUser(c); ok && tok == "" {
				tok = randomToken()
				s.sessions.Put(ctx, keyCSRF, tok)
			}
		default:
			sent := r.Header.Get(csrfHeader)
			if sent == "" {
				sent = r.PostFormValue(csrfField) // the body only, never the query
			}
			if tok == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(tok)) != 1 {
				c.Set("csrf", tok) // the error page's own forms still work
				return echo.NewHTTPError(http.StatusForbidden,
					"This form expired or did not come from this site. Go back, reload the page and try again.")
			}
		}
		c.Set("csrf", tok)
		return next(c)
	}
}
