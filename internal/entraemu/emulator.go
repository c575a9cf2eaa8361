package entraemu

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Config configures an Emulator. The zero value is usable.
type Config struct {
	// Seed is the initial directory; nil means DefaultSeed().
	Seed *Seed
	// Now is the clock for tokens, codes, delta token expiry and throttling;
	// nil means time.Now.
	Now func() time.Time
	// PropagationDelay: for this long after consent creates a service
	// principal, token requests for that tenant get AADSTS700016 (protocol §6.1).
	PropagationDelay time.Duration
	// DeltaPageSize is the number of users or groups per delta page; 0 means
	// 200. Group pages also end after 5×DeltaPageSize members.
	DeltaPageSize int
	// ThrottleScale multiplies the Graph resource-unit quotas (protocol §5.7);
	// 0 means 1. Large values effectively disable throttling.
	ThrottleScale float64
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger

	// PublicHost is the host name advertised by Start in AuthorityHost and
	// GraphBaseURL and added to the TLS certificate; empty means the listen
	// host (127.0.0.1 when unspecified).
	PublicHost string
	// CACertPEM and CAKeyPEM load the CA that signs the TLS certificate;
	// empty means a fresh CA per Start.
	CACertPEM, CAKeyPEM []byte
	// EnableControl mounts the control API at /_emu/ on the login listener
	// in Start (StartTest always enables it).
	EnableControl bool

	// SubscriptionQuota is the number of change-notification subscriptions
	// one app may hold across all tenants; 0 means 50,000 (protocol §7).
	SubscriptionQuota int
	// SubscriptionValidationTimeout bounds the validation handshake of a
	// notification URL; 0 means 10s (protocol §7).
	SubscriptionValidationTimeout time.Duration
	// NotificationBatchWindow is how long a change waits for others of the
	// same subscription before a POST (up to 100 values); 0 means 100ms.
	NotificationBatchWindow time.Duration
	// NotificationRetryBase is the first retry delay of a failed delivery,
	// doubling per attempt up to 1h; 0 means 30s.
	NotificationRetryBase time.Duration
	// NotificationRetryFor is how long a notification is retried before it
	// is dropped; 0 means 4h (protocol §7).
	NotificationRetryFor time.Duration
}

// Emulator is an in-memory Entra ID and Microsoft Graph. All methods are
// safe for concurrent use.
type Emulator struct {
	now     func() time.Time
	log     *slog.Logger
	keys    *signingKeys
	hmacKey []byte

	pageSize      int
	throttleScale float64

	mu          sync.RWMutex
	seed        Seed // as loaded, before generation
	apps        []*appState
	tenants     map[string]*tenantState // by lower-case ID
	tenantOrder []string
	domains     map[string]string // lower-case domain → tenant ID
	propagation time.Duration

	sessMu   sync.Mutex
	codes    map[string]*authCode
	refresh  map[string]*refreshGrant
	jtis     map[string]time.Time
	throttle map[string]*bucket // app|tenant

	verified  sync.Map // raw Graph token → jwt.MapClaims with a valid signature
	verifiedN atomic.Int64

	statMu   sync.Mutex
	counters map[string]*Counters
	faults   map[string]Faults
	rng      *mrand.Rand

	subMu        sync.Mutex // after mu; guards the fields below and notify
	subs         map[string]*subscription
	subsByTenant map[string][]*subscription
	subCount     map[string]int // per quota key (quotaKeys)
	subQuota     int
	subSeq       uint64
	notify       notifier
}

type appState struct {
	App
	certs []*x509.Certificate
	feds  []fedKey
}

// New builds an Emulator from cfg.
func New(cfg Config) (*Emulator, error) {
	seed := cfg.Seed
	if seed == nil {
		seed = DefaultSeed()
	}
	e := &Emulator{
		now: cfg.Now, log: cfg.Logger, pageSize: cfg.DeltaPageSize, throttleScale: cfg.ThrottleScale,
		tenants: map[string]*tenantState{}, domains: map[string]string{}, propagation: cfg.PropagationDelay,
		codes: map[string]*authCode{}, refresh: map[string]*refreshGrant{}, jtis: map[string]time.Time{},
		throttle: map[string]*bucket{}, counters: map[string]*Counters{}, faults: map[string]Faults{},
		rng:  mrand.New(mrand.NewPCG(1, 2)),
		subs: map[string]*subscription{}, subsByTenant: map[string][]*subscription{}, subCount: map[string]int{}, subQuota: cfg.SubscriptionQuota,
	}
	e.notify.init(&e.subMu, cfg)
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.pageSize <= 0 {
		e.pageSize = 200
	}
	if e.throttleScale <= 0 {
		e.throttleScale = 1
	}
	keys, err := sharedSigningKeys()
	if err != nil {
		return nil, err
	}
	e.keys = keys
	e.hmacKey = make([]byte, 32)
	if _, err := rand.Read(e.hmacKey); err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	if err := e.load(seed); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Emulator) load(seed *Seed) error {
	e.seed = cloneSeed(seed)
	if e.seed.DefaultPassword == "" {
		e.seed.DefaultPassword = DefaultPasswordValue
	}
	if len(seed.Apps) == 0 {
		return fmt.Errorf("seed: no apps")
	}
	for _, a := range seed.Apps {
		if !isGUID(a.ClientID) {
			return fmt.Errorf("seed: app client id %q is not a GUID", a.ClientID)
		}
		st := &appState{App: a}
		st.ClientID = strings.ToLower(a.ClientID)
		for i, p := range a.CertificatesPEM {
			certs, err := parseCertificates([]byte(p))
			if err != nil {
				return fmt.Errorf("seed: app %s certificate %d: %w", a.ClientID, i, err)
			}
			st.certs = append(st.certs, certs...)
		}
		for i, f := range a.FederatedCredentials {
			k, err := parsePublicKey([]byte(f.KeyPEM))
			if err != nil {
				return fmt.Errorf("seed: app %s federated credential %d: %w", a.ClientID, i, err)
			}
			st.feds = append(st.feds, fedKey{FederatedCredential: f, key: k})
		}
		e.apps = append(e.apps, st)
	}
	created := e.now().Add(-365 * 24 * time.Hour)
	for _, ts := range seed.Tenants {
		if err := e.addTenant(ts, created); err != nil {
			return fmt.Errorf("seed: tenant %s: %w", ts.ID, err)
		}
	}
	if home := e.tenants[strings.ToLower(seed.HomeTenantID)]; home != nil {
		for _, a := range e.apps {
			if _, ok := home.sps[a.ClientID]; !ok {
				home.sps[a.ClientID] = &servicePrincipal{id: spID(home.id, a.ClientID, 0), enabled: true, created: created}
			}
		}
	}
	return nil
}

func spID(tenantID, clientID string, n int) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "sp/%s/%s/%d", tenantID, clientID, n)).String()
}

func (e *Emulator) addTenant(ts Tenant, created time.Time) error {
	id := strings.ToLower(ts.ID)
	if !isGUID(id) {
		return fmt.Errorf("id is not a GUID")
	}
	if _, dup := e.tenants[id]; dup {
		return fmt.Errorf("duplicate tenant")
	}
	domains := make([]string, 0, len(ts.Domains)+1)
	hasInitial := false
	for _, d := range ts.Domains {
		d = strings.ToLower(d)
		hasInitial = hasInitial || strings.HasSuffix(d, ".onmicrosoft.com")
		domains = append(domains, d)
	}
	if !hasInitial {
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, strings.ToLower(ts.DisplayName))
		if name == "" {
			name = "tenant" + id[:8]
		}
		domains = append(domains, name+".onmicrosoft.com")
	}
	for _, d := range domains {
		if other, dup := e.domains[d]; dup {
			return fmt.Errorf("domain %s already belongs to tenant %s", d, other)
		}
		e.domains[d] = id
	}
	t := &tenantState{
		id: id, displayName: ts.DisplayName, domains: domains, created: created,
		gen:     newGenerator(id, domains[0], ts.Generate),
		userIdx: map[string]int32{}, upnIdx: map[string]int32{}, groupIdx: map[string]int32{},
		sps: map[string]*servicePrincipal{}, deltaGen: 1,
	}
	t.notify = func(kind, objID string, deleted bool) { e.notifyChange(id, kind, objID, deleted) }
	t.users = make([]*userRec, t.gen.users, t.gen.users+len(ts.Users))
	t.live = t.gen.users
	t.groups = make([]*groupRec, t.gen.groups, t.gen.groups+len(ts.Groups))
	for _, u := range ts.Users {
		if u.ID == "" {
			u.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte("user/"+id+"/"+strings.ToLower(u.UserPrincipalName))).String()
		}
		if _, err := t.addUser(u); err != nil {
			return err
		}
	}
	for _, g := range ts.Groups {
		if g.ID == "" {
			g.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte("group/"+id+"/"+g.DisplayName)).String()
		}
		if _, err := t.addGroup(g); err != nil {
			return err
		}
	}
	if ts.Consented {
		a := e.apps[0]
		t.sps[a.ClientID] = &servicePrincipal{id: spID(id, a.ClientID, 0), roles: slices.Clone(a.RequiredRoles), enabled: true, created: created}
	}
	e.tenants[id] = t
	e.tenantOrder = append(e.tenantOrder, id)
	return nil
}

func cloneSeed(s *Seed) Seed {
	c := *s
	c.Apps = slices.Clone(s.Apps)
	c.Tenants = slices.Clone(s.Tenants)
	for i := range c.Tenants {
		c.Tenants[i].Users = slices.Clone(c.Tenants[i].Users)
		c.Tenants[i].Groups = slices.Clone(c.Tenants[i].Groups)
	}
	return c
}

// tenant finds a tenant by GUID or verified domain (case-insensitive).
// The caller holds e.mu.
func (e *Emulator) tenant(idOrDomain string) *tenantState {
	key := strings.ToLower(idOrDomain)
	if t := e.tenants[key]; t != nil {
		return t
	}
	if id, ok := e.domains[key]; ok {
		return e.tenants[id]
	}
	return nil
}

func (e *Emulator) app(clientID string) *appState {
	for _, a := range e.apps {
		if strings.EqualFold(a.ClientID, clientID) {
			return a
		}
	}
	return nil
}

// Seed returns the directory as loaded, with generated users and groups
// expanded (memberships as seeded, not as changed since).
func (e *Emulator) Seed() Seed {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s := cloneSeed(&e.seed)
	for i := range s.Tenants {
		ts := &s.Tenants[i]
		t := e.tenants[strings.ToLower(ts.ID)]
		if t == nil || ts.Generate == nil {
			continue
		}
		gen := t.gen
		users := make([]User, 0, gen.users+len(ts.Users))
		for slot := range gen.users {
			users = append(users, gen.fullUser(slot))
		}
		ts.Users = append(users, ts.Users...)
		groups := make([]Group, 0, gen.groups+len(ts.Groups))
		for gs := range gen.groups {
			g := gen.fullGroup(gs)
			start, n := gen.groupBase(gs)
			for k := range n {
				g.Members = append(g.Members, gen.userID((start+k)%gen.users))
			}
			groups = append(groups, g)
		}
		ts.Groups = append(groups, ts.Groups...)
		ts.Generate = nil
	}
	return s
}

// DefaultApp returns the first app registration (tests use its ClientID and
// Secrets[0].Value).
func (e *Emulator) DefaultApp() App {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[0].App
	a.Secrets = slices.Clone(a.Secrets)
	return a
}

// password returns the sign-in password of a user.
func (e *Emulator) password(u User) string {
	if u.Password != "" {
		return u.Password
	}
	return e.seed.DefaultPassword
}

// Grant consents as an admin of tenantID would, without a browser: it
// creates the default app's service principal (or keeps the existing one)
// and assigns the Graph app roles (empty → the app's RequiredRoles). A new
// service principal is subject to the propagation delay.
func (e *Emulator) Grant(tenantID string, roles ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("grant consent in tenant %s: %w", tenantID, ErrNotFound)
	}
	e.grantLocked(t, e.apps[0], roles)
	return nil
}

func (e *Emulator) grantLocked(t *tenantState, a *appState, roles []string) {
	if len(roles) == 0 {
		roles = a.RequiredRoles
	}
	sp := t.sps[a.ClientID]
	if sp == nil {
		sp = &servicePrincipal{id: uuid.NewString(), enabled: true, created: e.now()}
		t.sps[a.ClientID] = sp
	}
	for _, r := range roles {
		if !slices.Contains(sp.roles, r) {
			sp.roles = append(sp.roles, r)
		}
	}
}

// RevokeConsent deletes the default app's service principal in the tenant
// (the customer "removed the app"): token requests → AADSTS700016, Graph
// with an earlier token → 401 Authorization_IdentityNotFound.
func (e *Emulator) RevokeConsent(tenantID string) error {
	return e.withSP(tenantID, func(t *tenantState, sp *servicePrincipal) { delete(t.sps, e.apps[0].ClientID) })
}

// RemoveRoles keeps the service principal but drops its app role
// assignments: tokens are issued without roles, Graph answers 403.
func (e *Emulator) RemoveRoles(tenantID string) error {
	return e.withSP(tenantID, func(_ *tenantState, sp *servicePrincipal) { sp.roles = nil })
}

// DisableServicePrincipal sets accountEnabled=false on the service
// principal: token requests → AADSTS7000112.
func (e *Emulator) DisableServicePrincipal(tenantID string) error {
	return e.withSP(tenantID, func(_ *tenantState, sp *servicePrincipal) { sp.enabled = false })
}

func (e *Emulator) withSP(tenantID string, fn func(*tenantState, *servicePrincipal)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
	}
	sp := t.sps[e.apps[0].ClientID]
	if sp == nil {
		return fmt.Errorf("service principal in tenant %s: %w", tenantID, ErrNotFound)
	}
	fn(t, sp)
	return nil
}

// DeleteTenant removes a tenant: login requests → AADSTS90002, Graph
// tokens for it → 401.
func (e *Emulator) DeleteTenant(tenantID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("delete tenant %s: %w", tenantID, ErrNotFound)
	}
	for _, d := range t.domains {
		delete(e.domains, d)
	}
	delete(e.tenants, t.id)
	e.tenantOrder = slices.DeleteFunc(e.tenantOrder, func(id string) bool { return id == t.id })
	return nil
}

// SetPropagationDelay changes Config.PropagationDelay for later consents.
func (e *Emulator) SetPropagationDelay(d time.Duration) {
	e.mu.Lock()
	e.propagation = d
	e.mu.Unlock()
}

// ExpireDeltaTokens makes every outstanding delta and skip token of the
// tenant answer 400 syncStateNotFound (protocol §5.2).
func (e *Emulator) ExpireDeltaTokens(tenantID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tenant(tenantID); t != nil {
		t.deltaGen++
		t.expiredBelow = t.deltaGen
	}
}

// ForceReset makes the next delta request carrying an earlier token answer
// 410 Gone with a Location to restart from (protocol §5.2).
func (e *Emulator) ForceReset(tenantID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tenant(tenantID); t != nil {
		t.deltaGen++
		t.resetBelow = t.deltaGen
	}
}

// Faults are injected into Graph requests (not login requests).
type Faults struct {
	// ThrottleRate is the probability (0–1) of a 429 TooManyRequests.
	ThrottleRate float64
	// RetryAfter is sent with injected 429s and 503s; 0 means 1s for 429.
	RetryAfter time.Duration
	// ErrorRate is the probability of an ErrorStatus response.
	ErrorRate float64
	// ErrorStatus is 500, 503 or 504 (0 means 503).
	ErrorStatus int
	// Latency delays every request (real time, not the injected clock).
	Latency time.Duration
	// DropRate is the probability that the connection is closed without a response.
	DropRate float64
	// Replay writes the first object of every non-empty users/groups delta
	// page again at the page's end, members@delta included (protocol §5.2: a
	// client must handle the same object appearing more than once).
	Replay bool
}

// SetFaults injects faults for a tenant ("" = every tenant without its own).
func (e *Emulator) SetFaults(tenantID string, f Faults) {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	e.faults[strings.ToLower(tenantID)] = f
}

func (e *Emulator) faultsFor(tenantID string) Faults {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	if f, ok := e.faults[strings.ToLower(tenantID)]; ok {
		return f
	}
	return e.faults[""]
}

func (e *Emulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	e.statMu.Lock()
	defer e.statMu.Unlock()
	return e.rng.Float64() < p
}

// Counters are request statistics of one tenant (or of all with "").
type Counters struct {
	// TokenRequests counts token endpoint requests.
	TokenRequests int `json:"tokenRequests"`
	// TokenByStatus counts token responses by HTTP status.
	TokenByStatus map[int]int `json:"tokenByStatus"`
	// GraphRequests counts Graph requests.
	GraphRequests int `json:"graphRequests"`
	// GraphByStatus counts Graph responses by HTTP status.
	GraphByStatus map[int]int `json:"graphByStatus"`
	// Throttled counts 429 responses.
	Throttled int `json:"throttled"`
	// EarlyRetries counts requests that arrived inside a Retry-After window
	// announced for the tenant (429 or 503), however they were answered.
	EarlyRetries int `json:"earlyRetries"`
	// SubscriptionRequests counts Graph requests on /subscriptions.
	SubscriptionRequests int `json:"subscriptionRequests"`
	// NotificationsDelivered, NotificationsFailed and NotificationsDropped
	// count notification values (change and lifecycle) delivered, failed per
	// attempt, and given up on.
	NotificationsDelivered int `json:"notificationsDelivered"`
	NotificationsFailed    int `json:"notificationsFailed"`
	NotificationsDropped   int `json:"notificationsDropped"`
}

func (e *Emulator) count(tenantID string, fn func(c *Counters)) {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	key := strings.ToLower(tenantID)
	c := e.counters[key]
	if c == nil {
		c = &Counters{TokenByStatus: map[int]int{}, GraphByStatus: map[int]int{}}
		e.counters[key] = c
	}
	fn(c)
}

// Counters returns a copy of the tenant's counters; "" sums all tenants.
func (e *Emulator) Counters(tenantID string) Counters {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	out := Counters{TokenByStatus: map[int]int{}, GraphByStatus: map[int]int{}}
	key := strings.ToLower(tenantID)
	for k, c := range e.counters {
		if key != "" && k != key {
			continue
		}
		out.TokenRequests += c.TokenRequests
		out.GraphRequests += c.GraphRequests
		out.Throttled += c.Throttled
		out.EarlyRetries += c.EarlyRetries
		out.SubscriptionRequests += c.SubscriptionRequests
		out.NotificationsDelivered += c.NotificationsDelivered
		out.NotificationsFailed += c.NotificationsFailed
		out.NotificationsDropped += c.NotificationsDropped
		for s, n := range c.TokenByStatus {
			out.TokenByStatus[s] += n
		}
		for s, n := range c.GraphByStatus {
			out.GraphByStatus[s] += n
		}
	}
	return out
}

func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}
