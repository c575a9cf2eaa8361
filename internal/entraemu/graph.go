package entraemu

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// graphCtx is one Graph request.
type graphCtx struct {
	w           http.ResponseWriter
	r           *http.Request
	requestID   string
	clientReqID string
	base        string // https://host (no /v1.0)
	status      int
	p           principal
	faults      Faults // the caller's tenant's, read once per request
}

// principal is the verified caller of a Graph request.
type principal struct {
	tid, appID, oid string
	app             bool
	roles           []string
}

// GraphHandler serves the Graph host (protocol §5):
//
//	GET /v1.0/organization
//	GET /v1.0/users            ($select, $top ≤ 999, @odata.nextLink)
//	GET /v1.0/users/{id}
//	GET /v1.0/users/delta      (also delta(), microsoft.graph.delta[()])
//	GET /v1.0/groups/delta     (also delta(), microsoft.graph.delta[()])
//	/v1.0/subscriptions…       (subscriptions_graph.go)
//
// Every request is authenticated (signature, exp/nbf, aud, tenant, service
// principal), authorised by app role, subject to injected faults and to
// the resource-unit token bucket, and answered with request-id and
// client-request-id headers.
func (e *Emulator) GraphHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		gc := &graphCtx{w: w, r: r, requestID: uuid.NewString(), base: baseURL(r), status: 200}
		gc.clientReqID = r.Header.Get("client-request-id")
		if gc.clientReqID == "" {
			gc.clientReqID = gc.requestID
		}
		h := w.Header()
		h.Set("request-id", gc.requestID)
		h.Set("client-request-id", gc.clientReqID)
		h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"entraemu"}}`)
		h.Set("Strict-Transport-Security", "max-age=31536000")
		dropped := true
		defer func() {
			status := gc.status
			if dropped {
				status = 0 // connection dropped (injected fault)
			}
			e.count(gc.p.tid, func(c *Counters) {
				c.GraphRequests++
				c.GraphByStatus[status]++
				if status == http.StatusTooManyRequests {
					c.Throttled++
				}
			})
			e.log.Debug("graph request", "method", r.Method, "path", r.URL.Path, "status", status,
				"tenant_id", gc.p.tid, "request_id", gc.requestID, "duration", time.Since(start))
		}()
		e.serveGraph(gc)
		dropped = false
	})
}

func (e *Emulator) serveGraph(gc *graphCtx) {
	r := gc.r
	path, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		gc.error(http.StatusBadRequest, "BadRequest", "Invalid version.")
		return
	}
	path = strings.TrimSuffix(path, "/")
	isSub := strings.EqualFold(path, "subscriptions") || strings.HasPrefix(strings.ToLower(path), "subscriptions/")
	if r.Method != http.MethodGet && !isSub {
		gc.error(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
		return
	}
	p, herr := e.authGraph(r)
	if herr != nil {
		if herr.status == http.StatusUnauthorized {
			gc.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		}
		gc.error(herr.status, herr.code, herr.msg)
		return
	}
	gc.p = p
	segs := strings.Split(path, "/")
	lower := strings.ToLower(path)
	var (
		handler func(*graphCtx)
		roles   []string
		cost    = 1.0
	)
	userRoles := []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	groupRoles := []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	switch {
	case lower == "organization":
		handler, roles = e.graphOrganization, []string{"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	case lower == "users":
		handler, roles, cost = e.graphUsers, userRoles, usersCost(r)
	case isDelta(lower, "users"):
		handler, roles = e.usersDelta, userRoles
	case isDelta(lower, "groups"):
		handler, roles = e.groupsDelta, groupRoles
	case isSub:
		handler = func(gc *graphCtx) { e.serveSubscriptions(gc, segs) } // authorised per route
	case len(segs) == 2 && strings.EqualFold(segs[0], "users"):
		handler, roles, cost = e.graphUser, userRoles, usersCost(r)
	default:
		gc.error(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+segs[len(segs)-1]+"'.")
		return
	}
	if !p.app && lower == "organization" {
		roles = nil // delegated User.Read may read basic organization data (protocol §5.4)
	}
	if roles != nil && !slices.ContainsFunc(p.roles, func(r string) bool { return slices.Contains(roles, r) }) {
		gc.error(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	key := p.appID + "|" + p.tid
	if e.early(key) {
		e.count(p.tid, func(c *Counters) { c.EarlyRetries++ })
	}
	if !e.applyFaults(gc) {
		return
	}
	e.mu.RLock()
	users := 0
	if t := e.tenant(p.tid); t != nil {
		users = t.userCount()
	}
	e.mu.RUnlock()
	res := e.take(key, users, cost)
	if !res.ok {
		gc.w.Header().Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/"+p.appID+"/"+p.tid)
		gc.w.Header().Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
		gc.throttled(res.retryAfter)
		return
	}
	gc.w.Header().Set("x-ms-resource-unit", strconv.Itoa(int(cost)))
	if res.limitPct >= 0.8 {
		gc.w.Header().Set("x-ms-throttle-limit-percentage", strconv.FormatFloat(res.limitPct, 'f', 1, 64))
	}
	handler(gc)
}

// isDelta reports whether path is the delta function of a collection in
// any of its spellings: delta, delta() (the official SDKs), and the
// namespace-qualified microsoft.graph.delta and microsoft.graph.delta().
func isDelta(path, collection string) bool {
	fn, ok := strings.CutPrefix(path, collection+"/")
	if !ok {
		return false
	}
	fn = strings.TrimSuffix(strings.TrimPrefix(fn, "microsoft.graph."), "()")
	return fn == "delta"
}

// usersCost is the resource-unit cost of GET users (protocol §5.7): base 2,
// $select −1, $top < 20 −1, minimum 1.
func usersCost(r *http.Request) float64 {
	q := lowerQuery(r)
	c := 2.0
	if q["$select"] != "" {
		c--
	}
	if n, err := strconv.Atoi(q["$top"]); err == nil && n < 20 {
		c--
	}
	if q["$expand"] != "" {
		c++
	}
	return max(c, 1)
}

// lowerQuery returns the query with lower-cased keys ($deltaToken and
// $deltatoken are both used, protocol §5.2).
func lowerQuery(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[strings.ToLower(k)] = v[0]
	}
	return out
}

// applyFaults injects latency, drops, 429s and 5xx; false means answered.
func (e *Emulator) applyFaults(gc *graphCtx) bool {
	f := e.faultsFor(gc.p.tid)
	gc.faults = f
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-gc.r.Context().Done():
		}
	}
	if e.chance(f.DropRate) {
		panic(http.ErrAbortHandler) // closes the connection without a response
	}
	if e.chance(f.ThrottleRate) {
		ra := f.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		ra = ceilSeconds(ra)
		e.block(gc.p.appID+"|"+gc.p.tid, ra, true)
		gc.throttled(ra)
		return false
	}
	if e.chance(f.ErrorRate) {
		switch f.ErrorStatus {
		case http.StatusInternalServerError:
			gc.error(500, "generalException", "An unexpected error occurred.")
		case http.StatusGatewayTimeout:
			gc.error(504, "gatewayTimeout", "The gateway did not receive a timely response.")
		default:
			if f.RetryAfter > 0 {
				ra := ceilSeconds(f.RetryAfter)
				e.block(gc.p.appID+"|"+gc.p.tid, ra, false)
				gc.w.Header().Set("Retry-After", strconv.Itoa(int(ra.Seconds())))
			}
			gc.error(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
		}
		return false
	}
	return true
}

type graphErr struct {
	status    int
	code, msg string
}

var graphAudiences = []string{graphResourceURI, graphResourceURI + "/", graphAppID}

// authGraph verifies a bearer token as Graph does (protocol §5.6).
func (e *Emulator) authGraph(r *http.Request) (principal, *graphErr) {
	invalid := func(msg string) (principal, *graphErr) {
		return principal{}, &graphErr{http.StatusUnauthorized, "InvalidAuthenticationToken", msg}
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return invalid("Access token is empty.")
	}
	raw = strings.TrimSpace(raw)
	c, err := e.verifiedClaims(raw)
	if err != nil {
		if strings.Count(raw, ".") != 2 {
			return invalid("CompactToken parsing failed with error code: 80049217")
		}
		return invalid("Access token validation failure.")
	}
	now := e.now()
	exp, _ := claimTime(c, "exp")
	nbf, _ := claimTime(c, "nbf")
	if now.After(exp) || now.Before(nbf) {
		return invalid("Access token has expired or is not yet valid.")
	}
	if !slices.Contains(graphAudiences, claimString(c, "aud")) {
		return invalid("Access token validation failure. Invalid audience.")
	}
	p := principal{tid: claimString(c, "tid"), appID: claimString(c, "appid"), oid: claimString(c, "oid"),
		app: claimString(c, "idtyp") == "app"}
	if claimString(c, "iss") != "https://sts.windows.net/"+p.tid+"/" {
		return invalid("Access token validation failure. Invalid issuer.")
	}
	if rs, ok := c["roles"].([]any); ok {
		for _, x := range rs {
			if s, ok := x.(string); ok {
				p.roles = append(p.roles, s)
			}
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(p.tid)
	if t == nil {
		return invalid("Access token validation failure. Invalid tenant.")
	}
	if p.app {
		sp := t.sps[strings.ToLower(p.appID)]
		if sp == nil || sp.id != p.oid || !sp.enabled {
			return principal{}, &graphErr{http.StatusUnauthorized, "Authorization_IdentityNotFound", "The identity of the calling application could not be established."}
		}
		return p, nil
	}
	if slot, ok := t.userSlot(p.oid); !ok || t.userState(slot) != stateLive {
		return invalid("Access token validation failure. Invalid user.")
	}
	return p, nil
}

// verifiedClaims checks the token signature, remembering verified tokens
// (signature checks dominate small pages; time and SP checks still run on
// every request).
func (e *Emulator) verifiedClaims(raw string) (jwt.MapClaims, error) {
	if c, ok := e.verified.Load(raw); ok {
		return c.(jwt.MapClaims), nil
	}
	var c jwt.MapClaims
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k := e.keys.byKID(kid); k != nil {
				return k, nil
			}
			return nil, jwt.ErrTokenUnverifiable
		})
	if err != nil {
		return nil, err
	}
	if e.verifiedN.Add(1) > 10000 { // bound the cache: start over
		e.verified.Clear()
		e.verifiedN.Store(0)
	}
	e.verified.Store(raw, c)
	return c, nil
}

func (gc *graphCtx) error(status int, code, msg string) {
	gc.status = status
	b := make([]byte, 0, 256)
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"innerError":{"date":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05")
	b = append(b, `","request-id":"`...)
	b = append(b, gc.requestID...)
	b = append(b, `","client-request-id":`...)
	b = appendJSONString(b, gc.clientReqID)
	b = append(b, `}}}`...)
	gc.w.Header().Set("Content-Type", "application/json")
	gc.w.WriteHeader(status)
	gc.w.Write(b)
}

// notFound writes the 404 for a missing tenant or user id.
func (gc *graphCtx) notFound(id string) {
	gc.error(http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}

// throttled writes the 429 of protocol §5.6 with an integer Retry-After.
func (gc *graphCtx) throttled(retryAfter time.Duration) {
	gc.status = http.StatusTooManyRequests
	h := gc.w.Header()
	h.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	h.Set("Content-Type", "application/json")
	b := make([]byte, 0, 256)
	b = append(b, `{"error":{"code":"TooManyRequests","message":"Please retry again later.","innerError":{"code":"429","date":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05")
	b = append(b, `","message":"Please retry after","request-id":"`...)
	b = append(b, gc.requestID...)
	b = append(b, `","status":"429","client-request-id":`...)
	b = appendJSONString(b, gc.clientReqID)
	b = append(b, `}}}`...)
	gc.w.WriteHeader(http.StatusTooManyRequests)
	gc.w.Write(b)
}

const odataContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

func (gc *graphCtx) ok(b []byte) {
	h := gc.w.Header()
	h.Set("Content-Type", odataContentType)
	h.Set("OData-Version", "4.0")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	gc.w.WriteHeader(http.StatusOK)
	gc.w.Write(b)
}

// graphOrganization serves GET /organization (protocol §5.4).
func (e *Emulator) graphOrganization(gc *graphCtx) {
	e.mu.RLock()
	t := e.tenant(gc.p.tid)
	var b []byte
	if t != nil {
		b = appendODataContext(b, gc.base, "organization")
		b = append(b, `,"value":[{"id":"`...)
		b = append(b, t.id...)
		b = append(b, `","deletedDateTime":null,"businessPhones":[],"city":null,"country":null,"countryLetterCode":"US","createdDateTime":"`...)
		b = t.created.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, `","displayName":`...)
		b = appendJSONString(b, t.displayName)
		b = append(b, `,"tenantType":"AAD","verifiedDomains":[`...)
		initial := t.initialDomain()
		for i, d := range t.domains {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"capabilities":"Email, OfficeCommunicationsOnline","isDefault":`...)
			b = strconv.AppendBool(b, i == 0)
			b = append(b, `,"isInitial":`...)
			b = strconv.AppendBool(b, d == initial)
			b = append(b, `,"name":`...)
			b = appendJSONString(b, d)
			b = append(b, `,"type":"Managed"}`...)
		}
		b = append(b, `]}]}`...)
	}
	e.mu.RUnlock()
	if t == nil {
		gc.notFound(gc.p.tid)
		return
	}
	gc.ok(b)
}
