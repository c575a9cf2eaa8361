package entraemu

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

type signinView struct {
	AppName, Action, Login, Error string
}

type permission struct{ Value, Description string }

type consentView struct {
	AppName, UserUPN, TenantName, Action string
	Permissions                          []permission
}

type approvalView struct {
	AppName, UserUPN string
	ReturnURL        template.URL
}

type errorView struct {
	Code                                       int
	Message, TraceID, CorrelationID, Timestamp string
}

type formPostView struct {
	Action template.URL
	Fields []formField
}

type formField struct{ Name, Value string }

type messageView struct{ Title, Message string }

var roleDescriptions = map[string]string{
	"User.Read.All":         "Read all users' full profiles",
	"GroupMember.Read.All":  "Read all group memberships",
	"Group.Read.All":        "Read all groups",
	"Organization.Read.All": "Read organization information",
	"Directory.Read.All":    "Read directory data",
}

func permissionsOf(roles []string) []permission {
	out := make([]permission, 0, len(roles))
	for _, r := range roles {
		d := roleDescriptions[r]
		if d == "" {
			d = "Microsoft Graph application permission"
		}
		out = append(out, permission{Value: r, Description: d})
	}
	return out
}

// render writes a page from a buffer so a template error becomes a 500
// page, not half a page (house style, docs/architecture.md).
func render(w http.ResponseWriter, status int, name string, view any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, view); err != nil {
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage renders Entra's "having trouble signing you in" page: used
// when no redirect is allowed (bad client_id or redirect_uri, protocol §1).
func (e *Emulator) errorPage(w http.ResponseWriter, r *http.Request, a *aadError) {
	b := e.describe(r, a)
	status := a.status
	if status < 400 {
		status = http.StatusBadRequest
	}
	render(w, status, "error.html", errorView{Code: a.n, Message: a.msg, TraceID: b.TraceID, CorrelationID: b.CorrelationID, Timestamp: b.Timestamp})
}

// withQuery appends ordered parameters to a redirect URI (which may have
// its own query), optionally with the observed trailing empty fragment
// (protocol §1.1).
func withQuery(redirectURI string, kv []formField, emptyFragment bool) string {
	var sb strings.Builder
	sb.WriteString(redirectURI)
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
	}
	for _, f := range kv {
		sb.WriteString(sep)
		sb.WriteString(url.QueryEscape(f.Name))
		sb.WriteByte('=')
		sb.WriteString(url.QueryEscape(f.Value))
		sep = "&"
	}
	if emptyFragment {
		sb.WriteByte('#')
	}
	return sb.String()
}

// safeURL marks an http(s) URL as safe for an href or form action.
func safeURL(s string) template.URL {
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		return template.URL(s)
	}
	return "about:blank"
}
