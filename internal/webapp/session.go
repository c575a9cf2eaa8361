package webapp

import (
	"context"
	"encoding/gob"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Session keys.
const (
	keyUser   = "user"
	keySignIn = "signin"
	keyCSRF   = "csrf"  // string: the session's CSRF token (csrf.go)
	keyFlash  = "flash" // consoleFlash: the notice of the action just done
)

// sessionCookieName is the session cookie's name over http; over https it gets
// the __Host- prefix, which browsers accept only Secure, for Path=/ and
// without Domain, so no other host or subdomain can set or shadow it.
const sessionCookieName = "tenantsync_session"

// SessionUser is the signed-in user kept in the session, from a verified ID
// token. The console (OPERATOR_TENANT_ID + AppRoles "Operator") reads it too.
type SessionUser struct {
	TenantID       string
	ObjectID       string
	Username       string
	Name           string
	DirectoryRoles []string // wids
	AppRoles       []string // roles
	SignedInAt     time.Time
	// Binding is random per sign-in; connect states are bound to it.
	Binding string
}

// onboardingUser converts to the onboarding package's view of the user.
func (u SessionUser) onboardingUser() onboarding.User {
	return onboarding.User{TenantID: u.TenantID, ObjectID: u.ObjectID, Username: u.Username, Name: u.Name, DirectoryRoles: u.DirectoryRoles}
}

// IsAdmin reports whether the user may disconnect their organization.
func (u SessionUser) IsAdmin() bool { return u.onboardingUser().IsAdmin() }

// pendingSignIn is one sign-in attempt; its values never leave the server
// except state (in the authorize URL).
type pendingSignIn struct {
	State    string
	Nonce    string
	Verifier string
	ReturnTo string
	Issued   time.Time
}

// consoleFlash is the outcome of a console action, shown once on the
// tenant's page the action redirects to (post/redirect/get): a reload does
// not show it again, and the URL carries nothing.
type consoleFlash struct {
	TenantID string // "" for the webhooks page
	Done     string // a key of consoleNotices (consoleWebhookNotices without a tenant)
}

func init() {
	gob.Register(SessionUser{})
	gob.Register(pendingSignIn{})
	gob.Register(consoleFlash{})
}

func newSessionManager(store scs.Store, lifetime time.Duration, secure bool, log *slog.Logger) *scs.SessionManager {
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionCodec{}
	// No IdleTimeout: scs would then rewrite the session row on every
	// request to slide its expiry; an absolute lifetime costs no writes.
	sm.Lifetime = lifetime
	sm.Cookie.Name = sessionCookieName
	if secure {
		sm.Cookie.Name = "__Host-" + sessionCookieName
	}
	sm.Cookie.HttpOnly = true
	sm.Cookie.Path = "/"
	sm.Cookie.SameSite = http.SameSiteLaxMode // Strict would drop the cookie on the redirect back from Entra (docs/libraries.md §7)
	sm.Cookie.Secure = secure
	sm.Cookie.Persist = false
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Error("session store", "path", r.URL.Path, "err", err)
		http.Error(w, "The service is unavailable; please try again.", http.StatusServiceUnavailable)
	}
	return sm
}

// sessionMiddleware loads and saves the session around the handler. Errors
// are rendered inside, while the session's response writer is in place, so
// the session is committed once.
func (s *Server) sessionMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		s.sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Set(sessionLoaded, true)
			c.SetRequest(r)
			res.Writer = w
			if err := next(c); err != nil {
				c.Error(err)
			}
		})).ServeHTTP(res.Writer, c.Request())
		return nil
	}
}

// sessionLoaded marks, in the echo context, a request whose session is
// loaded: scs panics when asked about a request without one (bare routes,
// and errors raised before sessionMiddleware).
const sessionLoaded = "session_loaded"

// currentUser returns the signed-in user, if any.
func (s *Server) currentUser(c echo.Context) (SessionUser, bool) {
	if loaded, _ := c.Get(sessionLoaded).(bool); !loaded {
		return SessionUser{}, false
	}
	u, ok := s.sessions.Get(c.Request().Context(), keyUser).(SessionUser)
	return u, ok && u.TenantID != ""
}

// requireUser sends visitors who are not signed in to /signin, returning to
// the page they asked for.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := s.currentUser(c); ok {
			return next(c)
		}
		if !isRead(c) {
			return domain.ErrUnauthorized
		}
		return c.Redirect(http.StatusSeeOther, "/signin?return="+safeReturn(c.Request().URL.Path))
	}
}

// isRead reports a GET or HEAD: a visitor may be sent to sign in and back.
func isRead(c echo.Context) bool {
	m := c.Request().Method
	return m == http.MethodGet || m == http.MethodHead
}

// sessionStates keeps connect states in Postgres, bound to the signed-in
// session's random binding (onboarding.States).
type sessionStates struct {
	store   *postgres.Store
	binding string // empty when nobody is signed in
}

var _ onboarding.States = sessionStates{}

// Put remembers state for this session.
func (st sessionStates) Put(ctx context.Context, state string, issued time.Time) error {
	if st.binding == "" {
		return domain.ErrUnauthorized
	}
	return st.store.ConnectStatePut(ctx, state, st.binding, issued)
}

// states returns the connect states of the request's session.
func (s *Server) states(c echo.Context) sessionStates {
	u, _ := s.currentUser(c)
	return sessionStates{store: s.store, binding: u.Binding}
}
