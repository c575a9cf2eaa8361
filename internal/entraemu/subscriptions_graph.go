package entraemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Graph routes for change-notification subscriptions (protocol §7):
//
//	POST   /v1.0/subscriptions
//	GET    /v1.0/subscriptions
//	GET    /v1.0/subscriptions/{id}
//	PATCH  /v1.0/subscriptions/{id}
//	DELETE /v1.0/subscriptions/{id}
//	POST   /v1.0/subscriptions/{id}/reauthorize
//
// A subscription belongs to the token's tenant and app; any other caller
// gets 404.

// Read permissions accepted per resource (protocol §7: the resource's own
// read permissions; Graph refuses write-only grants for subscriptions).
var subRoles = map[string][]string{
	"users":  {"User.Read.All", "Directory.Read.All"},
	"groups": {"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"},
}

// subscriptionBody is the JSON of POST and PATCH.
type subscriptionBody struct {
	ChangeType               *string `json:"changeType"`
	NotificationURL          *string `json:"notificationUrl"`
	LifecycleNotificationURL *string `json:"lifecycleNotificationUrl"`
	Resource                 *string `json:"resource"`
	ExpirationDateTime       *string `json:"expirationDateTime"`
	ClientState              *string `json:"clientState"`
}

// subscriptionJSON is a subscription as Graph returns it.
type subscriptionJSON struct {
	Context                   string  `json:"@odata.context,omitempty"`
	ID                        string  `json:"id"`
	Resource                  string  `json:"resource"`
	ApplicationID             string  `json:"applicationId"`
	ChangeType                string  `json:"changeType"`
	ClientState               *string `json:"clientState"`
	NotificationURL           string  `json:"notificationUrl"`
	NotificationQueryOptions  *string `json:"notificationQueryOptions"`
	LifecycleNotificationURL  *string `json:"lifecycleNotificationUrl"`
	ExpirationDateTime        string  `json:"expirationDateTime"`
	CreatorID                 string  `json:"creatorId"`
	IncludeResourceData       *bool   `json:"includeResourceData"`
	LatestSupportedTLSVersion string  `json:"latestSupportedTlsVersion"`
	EncryptionCertificate     *string `json:"encryptionCertificate"`
	EncryptionCertificateID   *string `json:"encryptionCertificateId"`
	NotificationURLAppID      *string `json:"notificationUrlAppId"`
}

func (s *subscription) json() subscriptionJSON {
	j := subscriptionJSON{ID: s.id, Resource: s.resource, ApplicationID: s.appID, ChangeType: s.changeType,
		NotificationURL: s.notificationURL, ExpirationDateTime: string(appendGraphTime(nil, s.expires)),
		CreatorID: s.creatorID, LatestSupportedTLSVersion: "v1_2"}
	if s.clientState != "" {
		cs := s.clientState
		j.ClientState = &cs
	}
	if s.lifecycleURL != "" {
		lu := s.lifecycleURL
		j.LifecycleNotificationURL = &lu
	}
	return j
}

func (e *Emulator) serveSubscriptions(gc *graphCtx, segs []string) {
	e.count(gc.p.tid, func(c *Counters) { c.SubscriptionRequests++ })
	if !gc.p.app {
		gc.error(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	m := gc.r.Method
	switch {
	case len(segs) == 1 && m == http.MethodPost:
		e.createSubscription(gc)
	case len(segs) == 1 && m == http.MethodGet:
		e.listSubscriptions(gc)
	case len(segs) == 2 && m == http.MethodGet:
		if s, ok := e.ownSubscription(gc, segs[1]); ok {
			e.subMu.Lock()
			j := s.json()
			e.subMu.Unlock()
			j.Context = gc.base + "/v1.0/$metadata#subscriptions/$entity"
			gc.json(http.StatusOK, j)
		}
	case len(segs) == 2 && m == http.MethodPatch:
		e.updateSubscription(gc, segs[1])
	case len(segs) == 2 && m == http.MethodDelete:
		if s, ok := e.ownSubscription(gc, segs[1]); ok {
			e.subMu.Lock()
			e.removeSubLocked(s)
			e.subMu.Unlock()
			gc.noContent()
		}
	case len(segs) == 3 && strings.EqualFold(segs[2], "reauthorize") && m == http.MethodPost:
		if s, ok := e.ownSubscription(gc, segs[1]); ok {
			e.subMu.Lock()
			s.reauthRequired = false
			e.subMu.Unlock()
			gc.noContent() // 204 No Content (subscription-reauthorize, v1.0)
		}
	case len(segs) <= 3:
		gc.error(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
	default:
		gc.error(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+segs[len(segs)-1]+"'.")
	}
}

// ownSubscription finds a live subscription of the caller's tenant and app
// or answers 404.
func (e *Emulator) ownSubscription(gc *graphCtx, id string) (*subscription, bool) {
	e.subMu.Lock()
	s := e.liveSubLocked(id)
	e.subMu.Unlock()
	if s == nil || s.tid != strings.ToLower(gc.p.tid) || s.appID != strings.ToLower(gc.p.appID) {
		gc.error(http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return nil, false
	}
	return s, true
}

func (e *Emulator) listSubscriptions(gc *graphCtx) {
	tid, app := strings.ToLower(gc.p.tid), strings.ToLower(gc.p.appID)
	out := struct {
		Context string             `json:"@odata.context"`
		Value   []subscriptionJSON `json:"value"`
	}{Context: gc.base + "/v1.0/$metadata#subscriptions", Value: []subscriptionJSON{}}
	e.subMu.Lock()
	for _, s := range e.sortedSubsLocked(tid) {
		if s.appID == app {
			out.Value = append(out.Value, s.json())
		}
	}
	e.subMu.Unlock()
	gc.json(http.StatusOK, out)
}

func (e *Emulator) createSubscription(gc *graphCtx) {
	var body subscriptionBody
	if !gc.decode(&body) {
		return
	}
	if body.Resource == nil || body.ChangeType == nil || body.NotificationURL == nil || body.ExpirationDateTime == nil {
		gc.error(http.StatusBadRequest, "InvalidRequest", "resource, changeType, notificationUrl and expirationDateTime are required.")
		return
	}
	kind := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(*body.Resource), "/"))
	if subRoles[kind] == nil {
		gc.error(http.StatusBadRequest, "InvalidRequest", "Resource '"+*body.Resource+"' is not supported; the emulator supports 'users' and 'groups'.")
		return
	}
	if !slices.ContainsFunc(gc.p.roles, func(r string) bool { return slices.Contains(subRoles[kind], r) }) {
		gc.error(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	changeType, msg := normaliseChangeType(*body.ChangeType, kind)
	if msg == "" {
		msg = checkClientState(body.ClientState)
	}
	lifecycleURL := ""
	if body.LifecycleNotificationURL != nil {
		lifecycleURL = *body.LifecycleNotificationURL
	}
	if msg == "" {
		msg = checkNotifyURL("notificationUrl", *body.NotificationURL)
	}
	if msg == "" && lifecycleURL != "" {
		msg = checkNotifyURL("lifecycleNotificationUrl", lifecycleURL)
	}
	var expires time.Time
	if msg == "" {
		expires, msg = e.grantExpiration(*body.ExpirationDateTime, lifecycleURL)
	}
	if msg != "" {
		gc.error(http.StatusBadRequest, "InvalidRequest", msg)
		return
	}
	tid, app := strings.ToLower(gc.p.tid), strings.ToLower(gc.p.appID)
	e.subMu.Lock()
	quota := e.quotaErrLocked(tid, app)
	e.subMu.Unlock()
	if quota != "" {
		gc.error(http.StatusForbidden, "Forbidden", quota)
		return
	}
	if herr := e.handshake(gc.r.Context(), *body.NotificationURL, lifecycleURL); herr != nil {
		gc.error(herr.status, herr.code, herr.msg)
		return
	}
	s := &subscription{id: uuid.NewString(), tid: tid, appID: app, creatorID: gc.p.oid, resource: *body.Resource,
		kind: kind, changeType: changeType, notificationURL: *body.NotificationURL, lifecycleURL: lifecycleURL,
		expires: expires}
	if body.ClientState != nil {
		s.clientState = *body.ClientState
	}
	s.changes = &subQueue{sub: s}
	s.lifecycle = &subQueue{sub: s, lifecycle: true}
	e.subMu.Lock()
	if quota = e.quotaErrLocked(tid, app); quota == "" { // again: the handshake ran unlocked
		e.addSubLocked(s)
	}
	j := s.json()
	e.subMu.Unlock()
	if quota != "" {
		gc.error(http.StatusForbidden, "Forbidden", quota)
		return
	}
	j.Context = gc.base + "/v1.0/$metadata#subscriptions/$entity"
	gc.json(http.StatusCreated, j)
}

func (e *Emulator) updateSubscription(gc *graphCtx, id string) {
	s, ok := e.ownSubscription(gc, id)
	if !ok {
		return
	}
	var body subscriptionBody
	if !gc.decode(&body) {
		return
	}
	if body.Resource != nil || body.ChangeType != nil || body.ClientState != nil {
		gc.error(http.StatusBadRequest, "InvalidRequest", "Only expirationDateTime, notificationUrl and lifecycleNotificationUrl can be updated.")
		return
	}
	e.subMu.Lock()
	notifyURL, lifecycleURL, expires := s.notificationURL, s.lifecycleURL, s.expires
	e.subMu.Unlock()
	newNotify, newLifecycle := "", ""
	msg := ""
	if body.NotificationURL != nil && *body.NotificationURL != notifyURL {
		newNotify, notifyURL = *body.NotificationURL, *body.NotificationURL
		msg = checkNotifyURL("notificationUrl", notifyURL)
	}
	if msg == "" && body.LifecycleNotificationURL != nil && *body.LifecycleNotificationURL != lifecycleURL {
		newLifecycle, lifecycleURL = *body.LifecycleNotificationURL, *body.LifecycleNotificationURL
		if lifecycleURL != "" {
			msg = checkNotifyURL("lifecycleNotificationUrl", lifecycleURL)
		}
	}
	if msg == "" && body.ExpirationDateTime != nil {
		expires, msg = e.grantExpiration(*body.ExpirationDateTime, lifecycleURL)
	}
	if msg != "" {
		gc.error(http.StatusBadRequest, "InvalidRequest", msg)
		return
	}
	if herr := e.handshake(gc.r.Context(), newNotify, newLifecycle); herr != nil {
		gc.error(herr.status, herr.code, herr.msg)
		return
	}
	e.subMu.Lock()
	if e.liveSubLocked(s.id) == nil { // deleted while the handshake ran
		e.subMu.Unlock()
		gc.error(http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return
	}
	s.notificationURL, s.lifecycleURL, s.expires = notifyURL, lifecycleURL, expires
	s.reauthRequired = false // a renewal also answers reauthorizationRequired (protocol §7)
	j := s.json()
	e.subMu.Unlock()
	j.Context = gc.base + "/v1.0/$metadata#subscriptions/$entity"
	gc.json(http.StatusOK, j)
}

// normaliseChangeType accepts a comma-separated subset of updated,deleted:
// users and groups support only these two (protocol §7).
func normaliseChangeType(raw, kind string) (string, string) {
	var out []string
	for _, c := range strings.Split(raw, ",") {
		c = strings.TrimSpace(c)
		switch c {
		case "updated", "deleted":
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		default:
			return "", "Change type '" + c + "' is not supported for resource '" + kind + "'; use updated and/or deleted."
		}
	}
	return strings.Join(out, ","), ""
}

func checkClientState(cs *string) string {
	if cs != nil && len(*cs) > subClientStateMax {
		return "clientState must be at most 128 characters."
	}
	return ""
}

// checkNotifyURL requires https, or http on a loopback host (a documented
// deviation, like Entra's loopback redirect URIs, so tests can use plain
// httptest servers).
func checkNotifyURL(field, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return field + " must be an absolute URL."
	}
	switch host := u.Hostname(); {
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && (host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")):
		return ""
	}
	return field + " must use https."
}

// grantExpiration applies the lifetime rules of protocol §7: at most
// 41,760 minutes ahead, raised to 45 minutes, and a lifecycle URL when more
// than an hour ahead.
func (e *Emulator) grantExpiration(raw, lifecycleURL string) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, "expirationDateTime '" + raw + "' is not a valid date and time."
	}
	now := e.now()
	switch {
	case !t.After(now):
		return time.Time{}, "Subscription expiration must be in the future."
	case t.Sub(now) > subMaxLifetime:
		return time.Time{}, "Subscription expiration can only be 41760 minutes in the future."
	case t.Sub(now) < subMinLifetime:
		t = now.Add(subMinLifetime)
	}
	if lifecycleURL == "" && t.Sub(now) > subLifecycleNeeded {
		return time.Time{}, "lifecycleNotificationUrl is required for subscription creation on this resource when the expirationDateTime value exceeds 1 hour."
	}
	return t.UTC(), ""
}

// handshake validates each non-empty URL as Graph does (protocol §7): a
// POST with ?validationToken= that must be answered within the validation
// timeout with 200, text/plain and the decoded token.
func (e *Emulator) handshake(ctx context.Context, urls ...string) *graphErr {
	for _, u := range urls {
		if u == "" {
			continue
		}
		if herr := e.validateURL(ctx, u); herr != nil {
			return herr
		}
	}
	return nil
}

func (e *Emulator) validateURL(parent context.Context, raw string) *graphErr {
	failed := &graphErr{http.StatusBadRequest, "InvalidRequest", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."}
	token := "Validation: Testing client application reachability for subscription Request-Id: " + uuid.NewString()
	u, err := url.Parse(raw)
	if err != nil {
		return failed
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(parent, e.notify.validationTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return failed
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := e.notify.client.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &graphErr{http.StatusBadRequest, "InvalidRequest", "Subscription validation request timed out."}
	case err != nil || resp.StatusCode != http.StatusOK:
		return failed
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return &graphErr{http.StatusBadRequest, "InvalidRequest", "Subscription validation request failed. Response must have Content-Type text/plain."}
	}
	if string(b) != token {
		return &graphErr{http.StatusBadRequest, "InvalidRequest", "Subscription validation request failed. Response must exactly match validationToken query parameter."}
	}
	return nil
}

// decode reads a JSON request body (at most 1 MiB) or answers 400.
func (gc *graphCtx) decode(v any) bool {
	b, err := io.ReadAll(io.LimitReader(gc.r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		gc.error(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return false
	}
	return true
}

func (gc *graphCtx) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		gc.error(http.StatusInternalServerError, "generalException", "An unexpected error occurred.")
		return
	}
	gc.status = status
	h := gc.w.Header()
	h.Set("Content-Type", odataContentType)
	h.Set("OData-Version", "4.0")
	gc.w.WriteHeader(status)
	gc.w.Write(b)
}

func (gc *graphCtx) noContent() {
	gc.status = http.StatusNoContent
	gc.w.WriteHeader(http.StatusNoContent)
}
