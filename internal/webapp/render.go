package webapp

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/web"
)

// Layout is what the shared layout needs; every page's view model embeds it.
type Layout struct {
	Title string
	// User is the signed-in user, nil for visitors.
	User *SessionUser
	// CSRF is the token for the forms of the page.
	CSRF string
	// RefreshSeconds > 0 keeps the page's data-live regions current from the
	// server every so many seconds (web/static/live.js), without reloading
	// it: a meta refresh would move focus and fails WCAG 2.2.1.
	RefreshSeconds int
	// Notice is a fixed message chosen by the handler (never request text).
	Notice string
	// Operator shows the console link to users who may open it.
	Operator bool
}

// layout returns the Layout of the current request.
func (l *Layout) layout() *Layout { return l }

type page interface{ layout() *Layout }

// pageNames lists every page template; each is parsed with the layout into
// its own set, so pages may define the same blocks.
var pageNames = []string{
	"landing", "tenant", "connect_error", "signin_error", "disconnect_confirm", "disconnect_done", "error",
	"console_overview", "console_needs_action", "console_tenants", "console_tenant", "console_confirm", "console_message", "console_webhooks",
}

type pages struct {
	sets map[string]*template.Template
}

var funcs = template.FuncMap{
	// statusWord names a tenant status as the badges do ("Active"); the
	// history lists stored statuses as strings.
	"statusWord": func(s string) string {
		if l, ok := statusLabel[domain.TenantStatus(s)]; ok {
			return l
		}
		return s
	},
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	"at": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

func parsePages() (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(web.FS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// render executes a page into a buffer, so a template error becomes an
// error page rather than half a page.
func (s *Server) render(c echo.Context, status int, name string, v page) error {
	l := v.layout()
	if u, ok := s.currentUser(c); ok && l.User == nil {
		l.User = &u
	}
	// Pages that set User themselves (/tenant) get the console link too.
	if l.User != nil {
		l.Operator = s.isOperator(*l.User)
	}
	if tok, ok := c.Get("csrf").(string); ok {
		l.CSRF = tok
	}
	t, ok := s.pages.sets[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// staticHandler serves the embedded CSS and images.
func staticHandler() echo.HandlerFunc {
	sub, err := fs.Sub(web.FS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	h := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return func(c echo.Context) error {
		// Missing files get the site's 404 page, not FileServer's text.
		name := strings.TrimPrefix(c.Request().URL.Path, "/static/")
		if st, err := fs.Stat(sub, name); err != nil || st.IsDir() {
			return echo.ErrNotFound
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
