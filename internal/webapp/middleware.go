package webapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tenantsync/tenantsync/internal/api"
)

// contentSecurityPolicy allows scripts, fetches, styles and images from
// this origin only (no inline script or style), forms posting to this
// origin only, and no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// middleware installs the chain of docs/libraries.md §6, in its order. The session
// is loaded after the context timeout; CSRF checks every unsafe method.
func (s *Server) middleware() {
	e := s.echo
	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRequestID: true,
		HandleError: true,
		// URIPath only: the query carries code and state.
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("request_id", v.RequestID))
			return nil
		},
	}))
	// A panic becomes the request's error, logged once with its stack by
	// handleError, rather than a second log line on echo's own logger.
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
			return fmt.Errorf("panic: %w\n%s", err, stack)
		},
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		HSTSMaxAge:            31536000,
		ContentSecurityPolicy: contentSecurityPolicy,
		ReferrerPolicy:        "no-referrer",
	}))
	e.Use(s.limitBody)
	e.Use(refuseBadText)
	e.Use(middleware.ContextTimeout(s.cfg.RequestTimeout))
	e.Use(s.skipFor(s.sessionMiddleware, isBare))
	e.Use(s.skipFor(s.csrf, isBare)) // csrf.go: the token lives in the session
	e.Use(noStore)
}

// observe records each request's route pattern (never the raw path, which
// holds tenant IDs), status and latency.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil && !c.Response().Committed {
			c.Error(err) // write the error page now, so its status is known
		}
		s.metrics.ObserveHTTP(c.Path(), c.Request().Method, c.Response().Status, time.Since(start))
		// A notification body refused for its size never reaches its
		// handler when its length was declared; it is counted here.
		if ep, ok := graphEndpoints[c.Path()]; ok && c.Response().Status == http.StatusRequestEntityTooLarge {
			s.metrics.ObserveGraphNotifications(ep, resultTooLarge, 1)
		}
		return err
	}
}

// isBare reports requests that need neither a session nor CSRF: health
// checks, static files, the API and Graph's notifications.
func isBare(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/api/") ||
		strings.HasPrefix(p, "/graph/")
}

func (s *Server) skipFor(mw echo.MiddlewareFunc, skip func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		wrapped := mw(next)
		return func(c echo.Context) error {
			if skip(c) {
				return next(c)
			}
			return wrapped(c)
		}
	}
}

// noStore keeps pages with personal data out of shared caches.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			c.Response().Header().Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// callbackLimit rate-limits the OAuth callbacks per client IP (as extracted
// by e.IPExtractor).
func (s *Server) callbackLimit() echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: s.cfg.CallbackRate, Burst: s.cfg.CallbackBurst, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		ErrorHandler: func(c echo.Context, err error) error {
			return echo.NewHTTPError(http.StatusForbidden, "request refused")
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			return echo.NewHTTPError(http.StatusTooManyRequests, "Too many attempts from your network; please wait a minute and try again.")
		},
	})
}

// pageWords are the words an error page shows for a status; the status of
// a domain error comes from the one kind-to-status table (api.StatusOf).
var pageWords = map[int]struct{ title, message string }{
	http.StatusBadRequest:   {"Something in the request was not right", "Please go back and try again."},
	http.StatusUnauthorized: {"Please sign in", "You need to sign in with your work account to continue."},
	http.StatusForbidden:    {"Not allowed", "Your account may not do this."},
	http.StatusNotFound:     {"Not found", "There is nothing here."},
	http.StatusConflict:     {"Already done", "This has already happened; reload the page to see the current state."},
}

// handleError answers every error once, as a problem document under
// /api/ (api.WriteError, the API's own mapping) and as a page elsewhere; it
// runs outside Recover, so it must not panic, and if it does anyway the
// client still gets a complete answer. Only 5xx are logged, with the
// request ID, so one failed request is one log line.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.logFailure(c, http.StatusInternalServerError, fmt.Errorf("error page for %w: panic: %v", err, r))
			if !c.Response().Committed {
				_ = c.HTML(http.StatusInternalServerError, "<!doctype html><title>Something went wrong</title><p>We could not complete this request.</p>\n")
			}
		}
	}()
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		if status := api.WriteError(c, err); status >= 500 {
			s.logFailure(c, status, err)
		}
		return
	}
	v := errorView{Layout: Layout{Title: "Something went wrong"}, Status: http.StatusInternalServerError,
		Message: "We could not complete this request. Please try again in a moment."}
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		v.Status = he.Code
		v.Title = http.StatusText(he.Code)
		if msg, ok := he.Message.(string); ok && he.Code < 500 {
			v.Message = msg
		}
		if he.Code == http.StatusNotFound {
			v.Title, v.Message = "Page not found", "There is no page at this address."
		}
	case errors.Is(err, context.DeadlineExceeded):
		v.Status, v.Title, v.Message = http.StatusServiceUnavailable, "This took too long", "Please try again in a moment."
	default:
		if status := api.StatusOf(err); status < 500 {
			w, ok := pageWords[status]
			if !ok {
				w.title, w.message = http.StatusText(status), "Please go back and try again."
			}
			v.Status, v.Title, v.Message = status, w.title, w.message
		}
	}
	if v.Status >= 500 {
		s.logFailure(c, v.Status, err)
	}
	if v.Status == http.StatusUnauthorized {
		v.SignIn = true
	}
	// HEAD gets the page's headers too; net/http drops the body.
	if rerr := s.render(c, v.Status, "error", &v); rerr != nil {
		s.log.Error("render error page", "err", rerr)
		_ = c.String(v.Status, v.Title)
	}
}

// logFailure is the one log line of a request that failed on our side.
func (s *Server) logFailure(c echo.Context, status int, err error) {
	s.log.LogAttrs(c.Request().Context(), slog.LevelError, "request failed",
		slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path),
		slog.Int("status", status), slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		slog.String("err", err.Error()))
}

// formBodyLimit is the most a form post may hold: a CSRF token and a few
// short fields.
const formBodyLimit = 8 << 10

// limitBody holds each request body to its route's limit (s.bodyLimits,
// set by routes; api.BodyLimit under /api/): a declared length over it is
// a 413 at once, and a body of unknown length stops there. Routes not
// listed take no body.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := s.bodyLimit(r.Method, c.Path(), r.URL.Path)
		if r.ContentLength > limit {
			// Closing spares reading (at the client's pace) a body we refuse.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return errTooLarge(limit)
		}
		// Given net/http's own writer, MaxBytesReader also closes the
		// connection once the limit is hit.
		r.Body = http.MaxBytesReader(c.Response().Writer, r.Body, limit)
		return next(c)
	}
}

func errTooLarge(limit int64) error {
	if limit == 0 {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "This address takes no request body.")
	}
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request may carry at most %d bytes.", limit))
}

// bodyLimit is the most a request to the route pattern may carry.
func (s *Server) bodyLimit(method, pattern, path string) int64 {
	if strings.HasPrefix(path, "/api/") {
		return api.BodyLimit
	}
	return s.bodyLimits[method+" "+pattern]
}

// refuseBadText answers 400 when the path, a query parameter or a form
// field holds NUL or invalid UTF-8. Postgres refuses both in text (SQLSTATE
// 22021) and nothing we serve needs them, so they are stopped here, once,
// rather than in each handler.
func refuseBadText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// The query, and the form body of POST, PUT and PATCH.
		params, err := c.FormParams()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return errTooLarge(mbe.Limit)
		case err != nil:
			return echo.NewHTTPError(http.StatusBadRequest, "The address or the form could not be read.")
		}
		bad := !goodText(c.Request().URL.Path)
		for k, vs := range params {
			bad = bad || !goodText(k)
			for _, v := range vs {
				bad = bad || !goodText(v)
			}
		}
		if bad {
			return echo.NewHTTPError(http.StatusBadRequest, "The address or the form holds characters that are not allowed.")
		}
		return next(c)
	}
}

// goodText reports whether s is valid UTF-8 without NUL.
func goodText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
