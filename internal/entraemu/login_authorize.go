package entraemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const ssoCookie = "entraemu_sso"

// session is the emulator's SSO session, kept in an HMAC-signed cookie so a
// later adminconsent in the same browser skips sign-in, as Entra does.
type session struct {
	tenantID, userID, sid string
}

func (e *Emulator) mac(s string) string {
	m := hmac.New(sha256.New, e.hmacKey)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (e *Emulator) setSession(w http.ResponseWriter, s session) {
	v := base64.RawURLEncoding.EncodeToString([]byte(s.tenantID + "|" + s.userID + "|" + s.sid))
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: v + "." + e.mac(v), Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode})
}

func (e *Emulator) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(ssoCookie)
	if err != nil {
		return session{}, false
	}
	v, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(e.mac(v))) {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return session{}, false
	}
	p := strings.Split(string(raw), "|")
	if len(p) != 3 {
		return session{}, false
	}
	return session{tenantID: p[0], userID: p[1], sid: p[2]}, true
}

// signedInUser resolves a session to a live, enabled user.
func (e *Emulator) sessionUser(s session) (*tenantState, User, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(s.tenantID)
	if t == nil {
		return nil, User{}, false
	}
	slot, ok := t.userSlot(s.userID)
	if !ok {
		return nil, User{}, false
	}
	u, st := t.user(slot)
	if st != stateLive || !u.AccountEnabled {
		return nil, User{}, false
	}
	return t, u, true
}

// signIn checks posted credentials; on failure it returns the message for
// the sign-in page (HTTP 200, as Entra re-renders its page).
func (e *Emulator) signIn(login, password string) (*tenantState, User, string) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	at := strings.LastIndexByte(login, '@')
	var t *tenantState
	if at > 0 {
		t = e.tenant(login[at+1:])
	}
	if t == nil {
		return nil, User{}, "AADSTS50034: We couldn't find an account with that username. Try another account."
	}
	slot, ok := t.userByUPN(login)
	if !ok {
		return nil, User{}, "AADSTS50034: We couldn't find an account with that username. Try another account."
	}
	u, st := t.user(slot)
	if st != stateLive {
		return nil, User{}, "AADSTS50034: We couldn't find an account with that username. Try another account."
	}
	if !hmac.Equal([]byte(password), []byte(e.password(u))) {
		return nil, User{}, "AADSTS50126: Error validating credentials due to invalid username or password."
	}
	if !u.AccountEnabled {
		return nil, User{}, "AADSTS50057: The user account is disabled."
	}
	return t, u, ""
}

// flow holds the validated parameters common to authorize and adminconsent.
type flow struct {
	ref         tenantRef
	app         *appState
	redirectURI string
	state       string
}

// startFlow validates tenant, client_id and redirect_uri. Failures render
// an error page and never redirect (protocol §1; issue 3).
func (e *Emulator) startFlow(w http.ResponseWriter, r *http.Request, seg string, v1Consent bool) (flow, bool) {
	q := r.URL.Query()
	e.mu.RLock()
	ref, aerr := e.resolveTenant(seg)
	var a *appState
	if aerr == nil {
		if cid := q.Get("client_id"); cid == "" {
			aerr = &aadError{400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."}
		} else if a = e.app(cid); a == nil {
			aerr = errAppNotFound(cid, seg)
		}
	}
	e.mu.RUnlock()
	if aerr != nil {
		e.errorPage(w, r, aerr)
		return flow{}, false
	}
	ru, ok := matchRedirect(a, q.Get("redirect_uri"), v1Consent)
	if !ok {
		e.errorPage(w, r, &aadError{400, "invalid_request", 50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", q.Get("redirect_uri"), a.ClientID)})
		return flow{}, false
	}
	return flow{ref: ref, app: a, redirectURI: ru, state: q.Get("state")}, true
}

// matchRedirect requires an exact match; the v1 adminconsent endpoint also
// allows additional path segments and defaults to the first URI (protocol §1.2).
func matchRedirect(a *appState, ru string, v1 bool) (string, bool) {
	if ru == "" {
		if v1 && len(a.RedirectURIs) > 0 {
			return a.RedirectURIs[0], true
		}
		return "", false
	}
	if slices.Contains(a.RedirectURIs, ru) {
		return ru, true
	}
	if v1 {
		for _, reg := range a.RedirectURIs {
			if strings.HasPrefix(ru, strings.TrimSuffix(reg, "/")+"/") {
				return ru, true
			}
		}
	}
	return "", false
}

func (e *Emulator) showSignIn(w http.ResponseWriter, r *http.Request, f flow, login, msg string) {
	if login == "" {
		login = r.URL.Query().Get("login_hint")
	}
	render(w, http.StatusOK, "signin.html", signinView{AppName: f.app.DisplayName, Action: r.URL.RequestURI(), Login: login, Error: msg})
}

// authenticate returns the signed-in user from the posted sign-in form or
// the SSO cookie; ok=false means a page has been written.
func (e *Emulator) authenticate(w http.ResponseWriter, r *http.Request, f flow, forceLogin bool) (*tenantState, User, string, bool) {
	if r.Method == http.MethodPost && r.PostForm.Has("login") {
		t, u, msg := e.signIn(r.PostForm.Get("login"), r.PostForm.Get("password"))
		if msg != "" {
			e.showSignIn(w, r, f, r.PostForm.Get("login"), msg)
			return nil, User{}, "", false
		}
		sid := newSID()
		e.setSession(w, session{tenantID: t.id, userID: u.ID, sid: sid})
		return t, u, sid, true
	}
	if s, ok := e.session(r); ok && !forceLogin {
		if t, u, ok := e.sessionUser(s); ok {
			return t, u, s.sid, true
		}
	}
	e.showSignIn(w, r, f, "", "")
	return nil, User{}, "", false
}

func err50020(u User, userTenant *tenantState, f flow) *aadError {
	name := f.ref.raw
	if f.ref.t != nil {
		name = f.ref.t.displayName
	}
	return &aadError{400, "access_denied", 50020, fmt.Sprintf("User account '{EmailHidden}' from identity provider 'https://sts.windows.net/%s/' does not exist in tenant '%s' and cannot access the application '%s'(%s) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.", userTenant.id, name, f.app.ClientID, f.app.DisplayName)}
}

// errorRedirect sends the browser back with error parameters (protocol §1.1:
// admin_consent=True stays on errors, tenant is never included).
func (e *Emulator) errorRedirect(w http.ResponseWriter, r *http.Request, f flow, a *aadError, adminConsent bool, mode string) {
	b := e.describe(r, a)
	kv := []formField{{"error", a.code}, {"error_description", b.ErrorDescription}, {"error_uri", b.ErrorURI}}
	if adminConsent {
		kv = append(kv, formField{"admin_consent", "True"})
	}
	if f.state != "" {
		kv = append(kv, formField{"state", f.state})
	}
	e.respond(w, r, f.redirectURI, kv, mode, adminConsent)
}

// respond delivers parameters by redirect (query) or auto-submitted form.
func (e *Emulator) respond(w http.ResponseWriter, r *http.Request, redirectURI string, kv []formField, mode string, emptyFragment bool) {
	if mode == "form_post" {
		render(w, http.StatusOK, "formpost.html", formPostView{Action: safeURL(redirectURI), Fields: kv})
		return
	}
	if mode == "fragment" {
		var v []string
		for _, f := range kv {
			v = append(v, url.QueryEscape(f.Name)+"="+url.QueryEscape(f.Value))
		}
		http.Redirect(w, r, redirectURI+"#"+strings.Join(v, "&"), http.StatusFound)
		return
	}
	http.Redirect(w, r, withQuery(redirectURI, kv, emptyFragment), http.StatusFound)
}

// handleAuthorize is the sign-in endpoint: code flow with PKCE, nonce,
// state, response_mode query/form_post/fragment (protocol §4.4).
func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request, seg string) {
	f, ok := e.startFlow(w, r, seg, false)
	if !ok {
		return
	}
	r.ParseForm()
	q := r.URL.Query()
	mode := q.Get("response_mode")
	if mode == "" {
		mode = "query"
	}
	if q.Get("response_type") != "code" {
		e.errorRedirect(w, r, f, &aadError{400, "unsupported_response_type", 700054, fmt.Sprintf("response_type '%s' is not enabled for the application.", q.Get("response_type"))}, false, mode)
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		e.errorRedirect(w, r, f, &aadError{400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."}, false, mode)
		return
	}
	method := q.Get("code_challenge_method")
	if method != "" && method != "S256" && method != "plain" {
		e.errorRedirect(w, r, f, &aadError{400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter or invalid Code_Challenge_Method."}, false, mode)
		return
	}
	prompt := q.Get("prompt")
	_, hasSession := e.session(r)
	if prompt == "none" && !hasSession {
		e.errorRedirect(w, r, f, &aadError{400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."}, false, mode)
		return
	}
	// select_account shows Entra's account picker; the sign-in page is the
	// emulator's picker.
	t, u, sid, ok := e.authenticate(w, r, f, (prompt == "login" || prompt == "select_account") && r.Method == http.MethodGet)
	if !ok {
		return
	}
	if f.ref.kind == kindTenant && f.ref.t.id != t.id {
		if r.Method == http.MethodGet { // SSO session of another tenant: ask for an account
			e.showSignIn(w, r, f, "", "")
			return
		}
		e.errorRedirect(w, r, f, err50020(u, t, f), false, mode)
		return
	}
	code := randomToken(48)
	e.sessMu.Lock()
	now := e.now()
	for k, c := range e.codes {
		if now.Sub(c.issued) > 2*codeLifetime {
			delete(e.codes, k)
		}
	}
	e.codes[code] = &authCode{clientID: f.app.ClientID, redirectURI: f.redirectURI, tenantID: t.id, userID: u.ID,
		scopes: scopes, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), method: method, sid: sid, issued: now}
	e.sessMu.Unlock()
	kv := []formField{{"code", code}}
	if f.state != "" {
		kv = append(kv, formField{"state", f.state})
	}
	kv = append(kv, formField{"session_state", sid})
	e.respond(w, r, f.redirectURI, kv, mode, false)
}

// handleAdminConsent serves /{tenant}/v2.0/adminconsent and the v1
// /{tenant}/adminconsent (protocol §1.1, §1.2).
func (e *Emulator) handleAdminConsent(w http.ResponseWriter, r *http.Request, seg string, v2 bool) {
	f, ok := e.startFlow(w, r, seg, !v2)
	if !ok {
		return
	}
	r.ParseForm()
	q := r.URL.Query()
	scope := q.Get("scope")
	if v2 && strings.TrimSpace(scope) == "" {
		e.errorRedirect(w, r, f, &aadError{400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."}, true, "query")
		return
	}
	t, u, _, ok := e.authenticate(w, r, f, false)
	if !ok {
		return
	}
	if f.ref.kind == kindTenant && f.ref.t.id != t.id {
		e.errorRedirect(w, r, f, err50020(u, t, f), true, "query")
		return
	}
	// Application permissions come only with /.default (protocol §1.1); the v1
	// endpoint consents to everything configured.
	roles := []string{}
	if !v2 || slices.ContainsFunc(strings.Fields(scope), func(s string) bool { return strings.HasSuffix(s, "/.default") }) {
		roles = slices.Clone(f.app.RequiredRoles)
	}
	declined := &aadError{400, "access_denied", 65004, "User declined to consent to access the app."}
	if !canConsent(u, roles) {
		// "Need admin approval" (AADSTS90094). What the app receives on
		// "return without consent" is UNVERIFIED; protocol §1.1 suggest 65004.
		render(w, http.StatusOK, "approval.html", approvalView{AppName: f.app.DisplayName, UserUPN: u.UserPrincipalName,
			ReturnURL: safeURL(e.errorRedirectURL(r, f, declined))})
		return
	}
	action := ""
	if r.Method == http.MethodPost {
		action = r.PostForm.Get("action")
	}
	switch action {
	case "accept":
		e.mu.Lock()
		e.grantLocked(t, f.app, roles)
		e.mu.Unlock()
		var kv []formField
		if v2 {
			granted := make([]string, len(roles))
			for i, role := range roles {
				granted[i] = graphResourceURI + "/" + role
			}
			kv = []formField{{"admin_consent", "True"}, {"tenant", t.id}, {"scope", strings.Join(granted, " ")}}
			if f.state != "" {
				kv = append(kv, formField{"state", f.state})
			}
		} else {
			kv = []formField{{"tenant", t.id}}
			if f.state != "" {
				kv = append(kv, formField{"state", f.state})
			}
			kv = append(kv, formField{"admin_consent", "True"})
		}
		e.respond(w, r, f.redirectURI, kv, "query", true)
	case "cancel":
		e.errorRedirect(w, r, f, declined, true, "query")
	default:
		render(w, http.StatusOK, "consent.html", consentView{AppName: f.app.DisplayName, UserUPN: u.UserPrincipalName,
			TenantName: t.displayName, Action: r.URL.RequestURI(), Permissions: permissionsOf(roles)})
	}
}

func (e *Emulator) errorRedirectURL(r *http.Request, f flow, a *aadError) string {
	b := e.describe(r, a)
	kv := []formField{{"error", a.code}, {"error_description", b.ErrorDescription}, {"error_uri", b.ErrorURI}, {"admin_consent", "True"}}
	if f.state != "" {
		kv = append(kv, formField{"state", f.state})
	}
	return withQuery(f.redirectURI, kv, true)
}

// handleLogout clears the SSO cookie and returns to a registered URI.
func (e *Emulator) handleLogout(w http.ResponseWriter, r *http.Request, seg string) {
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if pl := r.URL.Query().Get("post_logout_redirect_uri"); pl != "" && e.registeredOrigin(pl) {
		http.Redirect(w, r, pl, http.StatusFound)
		return
	}
	render(w, http.StatusOK, "message.html", messageView{Title: "You signed out of your account", Message: "It's a good idea to close all browser windows."})
}

func origin(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func (e *Emulator) registeredOrigin(s string) bool {
	o := origin(s)
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, a := range e.apps {
		for _, ru := range a.RedirectURIs {
			if o != "" && origin(ru) == o {
				return true
			}
		}
	}
	return false
}
