package entraemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Delta state is cheap: every tenant keeps a monotonically increasing change
// sequence; each changed object records the seq of its last change and is
// appended to a change log. Tokens are opaque, HMAC-signed tuples of
// (tenant, generation, phase, seq, cursor, $select), so pages are computed on
// the fly and a token costs no server memory.

const deltaTokenTTL = 7 * 24 * time.Hour // protocol §5.2 (BLOG-DT)

type tokenPhase byte

const (
	phaseInitial tokenPhase = 'i' // initial round: slot cursor, since = round start seq
	phaseChanges tokenPhase = 'c' // later round: change-log cursor
	phaseDelta   tokenPhase = 'd' // deltaLink: changes after since
	phaseList    tokenPhase = 'l' // GET /users paging
)

type deltaToken struct {
	kind   byte // 'u' users, 'g' groups
	phase  tokenPhase
	tenant string
	gen    uint64
	since  uint64
	pos    uint64
	moff   uint64 // member offset within the group at pos
	sel    propSet
	top    uint64
	issued int64
}

var errBadToken = errors.New("bad token")

// graphResource is what users and groups differ in for $select, delta
// tokens, @odata.context and links.
type graphResource struct {
	name string // "users" or "groups": URL segment and @odata.context
	typ  string // "user" or "group": microsoft.graph type in errors
	kind byte   // deltaToken.kind
	defs []propDef
	def  propSet // the properties without $select
}

var (
	usersRes  = &graphResource{name: "users", typ: "user", kind: 'u', defs: userProps, def: userDefault}
	groupsRes = &graphResource{name: "groups", typ: "group", kind: 'g', defs: groupProps, def: groupDefault}
)

// selectSet parses $select; an unknown property is answered with 400
// (ok=false).
func (res *graphResource) selectSet(gc *graphCtx, sel string) (propSet, bool) {
	set, unknown := parseSelect(sel, res.defs, res.def)
	if unknown != "" {
		gc.error(http.StatusBadRequest, "BadRequest", "Could not find a property named '"+unknown+"' on type 'microsoft.graph."+res.typ+"'.")
		return 0, false
	}
	return set, true
}

// context is the @odata.context after $metadata# for set, e.g.
// "users(displayName,mail)".
func (res *graphResource) context(set propSet) string {
	if set == res.def {
		return res.name
	}
	return res.name + "(" + selectList(set, res.defs) + ")"
}

// selectQuery is "$select=…&" for links, empty for the default set.
func (res *graphResource) selectQuery(set propSet) string {
	if set == res.def {
		return ""
	}
	return "$select=" + url.QueryEscape(selectList(set, res.defs)) + "&"
}

func (e *Emulator) encodeToken(tk deltaToken) string {
	b := make([]byte, 0, 96)
	b = append(b, 1, tk.kind, byte(tk.phase))
	hi, lo, _ := parseGUID(tk.tenant)
	b = binary.BigEndian.AppendUint64(b, hi)
	b = binary.BigEndian.AppendUint64(b, lo)
	for _, v := range []uint64{tk.gen, tk.since, tk.pos, tk.moff, uint64(tk.sel), tk.top, uint64(tk.issued)} {
		b = binary.AppendUvarint(b, v)
	}
	m := hmac.New(sha256.New, e.hmacKey)
	m.Write(b)
	b = m.Sum(b)[:len(b)+12]
	return base64.RawURLEncoding.EncodeToString(b)
}

func (e *Emulator) decodeToken(s string) (deltaToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 3+16+12 {
		return deltaToken{}, errBadToken
	}
	body, sig := b[:len(b)-12], b[len(b)-12:]
	m := hmac.New(sha256.New, e.hmacKey)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil)[:12], sig) || body[0] != 1 {
		return deltaToken{}, errBadToken
	}
	tk := deltaToken{kind: body[1], phase: tokenPhase(body[2])}
	hi := binary.BigEndian.Uint64(body[3:11])
	lo := binary.BigEndian.Uint64(body[11:19])
	tk.tenant = string(appendGUID(nil, hi, lo))
	rest := body[19:]
	vals := make([]uint64, 7)
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return deltaToken{}, errBadToken
		}
		vals[i], rest = v, rest[n:]
	}
	tk.gen, tk.since, tk.pos, tk.moff, tk.sel, tk.top, tk.issued = vals[0], vals[1], vals[2], vals[3], propSet(vals[4]), vals[5], int64(vals[6])
	return tk, nil
}

// deltaRequest resolves the request to a token, handling latest, expiry
// (400 syncStateNotFound) and reset (410 Gone) (protocol §5.2, §5.3).
// ok=false means the response has been written.
func (e *Emulator) deltaRequest(gc *graphCtx, t *tenantState, res *graphResource) (deltaToken, bool) {
	q := lowerQuery(gc.r)
	if t == nil {
		gc.notFound(gc.p.tid)
		return deltaToken{}, false
	}
	for _, bad := range []string{"$orderby", "$filter", "$search", "$count"} {
		if _, ok := q[bad]; ok {
			gc.error(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported query option '"+bad+"' for delta.")
			return deltaToken{}, false
		}
	}
	now := e.now()
	raw, hasDelta := q["$deltatoken"]
	if skip, ok := q["$skiptoken"]; ok && skip != "" {
		raw, hasDelta = skip, true
	}
	if hasDelta && raw != "" && raw != "latest" {
		tk, err := e.decodeToken(raw)
		if err != nil || tk.kind != res.kind || tk.tenant != t.id || tk.phase == phaseList {
			gc.error(http.StatusBadRequest, "BadRequest", "The delta or skip token is malformed or belongs to another request.")
			return deltaToken{}, false
		}
		if tk.gen < t.resetBelow {
			gc.w.Header().Set("Location", gc.base+"/v1.0/"+res.name+"/delta?"+res.selectQuery(tk.sel)+"$deltaToken=")
			gc.error(http.StatusGone, "resyncRequired", "Resync required. The delta token is no longer valid, and the app must reset the sync state.")
			return deltaToken{}, false
		}
		if tk.gen < t.expiredBelow || now.Sub(time.Unix(tk.issued, 0)) > deltaTokenTTL {
			gc.error(http.StatusBadRequest, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
			return deltaToken{}, false
		}
		if tk.phase == phaseDelta { // a later round starts at the first change after since
			tk.phase = phaseChanges
			log := t.userLog
			if res.kind == 'g' {
				log = t.groupLog
			}
			tk.pos = uint64(sort.Search(len(log), func(i int) bool { return log[i].seq > tk.since }))
			tk.moff = 0
		}
		return tk, true
	}
	sel := q["$select"]
	if res.kind == 'g' && strings.EqualFold(q["$expand"], "members") && sel != "" {
		sel += ",members"
	} else if res.kind == 'u' && q["$expand"] != "" {
		gc.error(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported query option '$expand' for delta.")
		return deltaToken{}, false
	}
	set, ok := res.selectSet(gc, sel)
	if !ok {
		return deltaToken{}, false
	}
	tk := deltaToken{kind: res.kind, phase: phaseInitial, tenant: t.id, gen: t.deltaGen, since: t.seq, sel: set}
	if raw == "latest" {
		tk.phase = phaseDelta
	}
	return tk, true
}

func (e *Emulator) pageSizeFor(r *http.Request) int {
	for _, p := range r.Header.Values("Prefer") {
		for part := range strings.SplitSeq(p, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "odata.maxpagesize="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					return min(n, 999)
				}
			}
		}
	}
	return e.pageSize
}

// writePage assembles {"@odata.context","@odata.nextLink|deltaLink","value"}.
func (e *Emulator) writePage(gc *graphCtx, res *graphResource, tk deltaToken, more bool, value []byte) {
	out := getBuf()
	defer putBuf(out)
	b := appendODataContext((*out)[:0], gc.base, res.context(tk.sel))
	tk.issued = e.now().Unix()
	link, param := `,"@odata.nextLink":"`, "/delta?$skiptoken="
	if !more {
		tk.phase, tk.pos, tk.moff = phaseDelta, 0, 0
		link, param = `,"@odata.deltaLink":"`, "/delta?$deltatoken="
	}
	b = append(b, link...)
	b = append(b, gc.base...)
	b = append(b, "/v1.0/"...)
	b = append(b, res.name...)
	b = append(b, param...)
	b = append(b, e.encodeToken(tk)...)
	b = append(b, `","value":[`...)
	b = append(b, value...)
	b = append(b, "]}"...)
	*out = b
	gc.ok(b)
}

// appendODataContext opens a response object with its @odata.context.
func appendODataContext(b []byte, base, context string) []byte {
	b = append(b, `{"@odata.context":"`...)
	b = append(b, base...)
	b = append(b, "/v1.0/$metadata#"...)
	b = append(b, context...)
	return append(b, '"')
}

// deltaPage appends the values of the delta page at tk's cursor to b and
// returns tk with the cursor advanced and whether another page follows.
// (tk is passed by value: a pointer would escape through the call.)
type deltaPage func(t *tenantState, tk deltaToken, size int, b []byte) ([]byte, deltaToken, bool)

// serveDelta serves GET users/delta or groups/delta: the token, a
// deltaLink-only answer to $deltatoken=latest, and pages written by page.
func (e *Emulator) serveDelta(gc *graphCtx, res *graphResource, page deltaPage) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(gc.p.tid)
	tk, ok := e.deltaRequest(gc, t, res)
	if !ok {
		return
	}
	if tk.phase == phaseDelta { // $deltatoken=latest: only a deltaLink
		e.writePage(gc, res, tk, false, nil)
		return
	}
	vb := getBuf()
	defer putBuf(vb)
	size := e.pageSizeFor(gc.r)
	b, next, more := page(t, tk, size, (*vb)[:0])
	if len(b) > 0 && gc.faults.Replay {
		// The page's first object again (pages are pure functions of the
		// token, so this writes exactly what the page began with).
		first, _, _ := page(t, tk, 1, nil)
		b = append(append(b, ','), first...)
	}
	tk = next
	if tk.phase != phaseInitial && !more {
		tk.since = t.seq // the round has seen every change so far
	}
	*vb = b
	e.writePage(gc, res, tk, more, b)
}

// usersDelta serves GET /users/delta (protocol §5.2).
func (e *Emulator) usersDelta(gc *graphCtx) { e.serveDelta(gc, usersRes, usersPage) }

// usersPage lists the live users by slot in the initial round, then the
// last change of each changed user.
func usersPage(t *tenantState, tk deltaToken, size int, b []byte) ([]byte, deltaToken, bool) {
	if tk.phase == phaseInitial {
		b, slot, more := appendLiveUsers(b, t, int(tk.pos), size, tk.sel, true)
		tk.pos = uint64(slot)
		return b, tk, more
	}
	n, more := 0, false
	i := int(tk.pos)
	for ; i < len(t.userLog); i++ {
		le := t.userLog[i]
		r := t.users[le.slot]
		if r.seq != le.seq {
			continue // superseded by a later change: emitted there
		}
		if n == size {
			more = true
			break
		}
		if n > 0 {
			b = append(b, ',')
		}
		if r.state == stateLive {
			b = appendUser(b, t, int(le.slot), tk.sel, true)
		} else {
			b = appendRemoved(b, r.u.ID, r.state)
		}
		n++
	}
	tk.pos = uint64(i)
	return b, tk, more
}

// appendLiveUsers writes up to limit live users, comma-separated, starting
// at slot from. It returns the slot to continue at and whether live users
// remain there.
func appendLiveUsers(b []byte, t *tenantState, from, limit int, set propSet, omitEmpty bool) ([]byte, int, bool) {
	n := 0
	slot := from
	for ; slot < len(t.users); slot++ {
		if r := t.users[slot]; r != nil && r.state != stateLive {
			continue // deleted: not listed
		}
		if n == limit {
			return b, slot, true
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendUser(b, t, slot, set, omitEmpty)
		n++
	}
	return b, slot, false
}

// appendRemoved writes a deleted object of a delta page: soft-deleted is
// reason "changed", hard-deleted "deleted" (protocol §5.2).
func appendRemoved(b []byte, id string, st objState) []byte {
	b = appendObjectID(b, id)
	if st == stateSoftDeleted {
		return append(b, `,"@removed":{"reason":"changed"}}`...)
	}
	return append(b, `,"@removed":{"reason":"deleted"}}`...)
}

// groupsDelta serves GET /groups/delta with members@delta; a large group's
// members are split across consecutive pages, the group object repeated
// (protocol §5.3).
func (e *Emulator) groupsDelta(gc *graphCtx) { e.serveDelta(gc, groupsRes, groupsPage) }

// groupsPage lists the groups like usersPage; a page also ends after
// 5×size members.
func groupsPage(t *tenantState, tk deltaToken, size int, b []byte) ([]byte, deltaToken, bool) {
	memberCap := 5 * size
	groups, members := 0, 0
	more := false
	withMembers := tk.sel&gMembers != 0
	initial := tk.phase == phaseInitial
	var count int
	if initial {
		count = len(t.groups)
	} else {
		count = len(t.groupLog)
	}
	i := int(tk.pos)
	moff := int(tk.moff)
	for ; i < count; i++ {
		gs := i
		var st objState
		if initial {
			if st = t.groupState(gs); st != stateLive {
				moff = 0
				continue
			}
		} else {
			le := t.groupLog[i]
			gs = int(le.slot)
			r := t.groups[gs]
			if r.seq != le.seq {
				moff = 0
				continue
			}
			st = r.state
		}
		if groups == size || (withMembers && members >= memberCap) {
			more = true
			break
		}
		if groups > 0 {
			b = append(b, ',')
		}
		groups++
		if st != stateLive {
			b = appendRemoved(b, t.groupID(gs), st)
			moff = 0
			continue
		}
		g, _ := t.group(gs)
		b = appendGroupProps(b, g, tk.sel)
		if !withMembers {
			b = append(b, '}')
			moff = 0
			continue
		}
		var next int
		var done bool
		b, next, done, members = appendMembers(b, t, gs, moff, initial, tk.since, memberCap, members)
		b = append(b, '}')
		if !done {
			more = true
			moff = next
			break
		}
		moff = 0
	}
	tk.pos, tk.moff = uint64(i), uint64(moff)
	return b, tk, more
}

// appendMembers writes ,"members@delta":[…] from virtual member index from
// until the page's member budget is used. In the initial round it lists
// current members; later rounds list memberships changed after since, with
// @removed for removals. done=false means the group continues on the next
// page at index next.
func appendMembers(b []byte, t *tenantState, gs, from int, initial bool, since uint64, budget, used int) ([]byte, int, bool, int) {
	r := t.groups[gs]
	start, n := t.baseRange(gs)
	opened := false
	emit := func(us int, removed bool) {
		if !opened {
			b = append(b, `,"members@delta":[`...)
			opened = true
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"@odata.type":"#microsoft.graph.user","id":"`...)
		b = t.appendUserID(b, us)
		if removed {
			b = append(b, `","@removed":{"reason":"deleted"}}`...)
		} else {
			b = append(b, `"}`...)
		}
		used++
	}
	closeArr := func() {
		if opened {
			b = append(b, ']')
		}
	}
	total := len(t.groups[gs].extraSortedOrNil())
	if initial {
		total += n
	}
	for vi := from; vi < total; vi++ {
		if used >= budget && opened {
			closeArr()
			return b, vi, false, used
		}
		if initial && vi < n {
			us := (start + vi) % t.gen.users
			if r != nil {
				if m, ok := r.extra[int32(us)]; ok && m.removed {
					continue
				}
			}
			if t.userState(us) != stateLive {
				continue
			}
			emit(us, false)
			continue
		}
		j := vi
		if initial {
			j -= n
		}
		us := r.extraSorted[j]
		m := r.extra[us]
		if initial {
			if m.removed || t.inBase(start, n, int(us)) {
				continue
			}
			if t.userState(int(us)) != stateLive {
				continue
			}
			emit(int(us), false)
			continue
		}
		if m.seq > since {
			emit(int(us), m.removed)
		}
	}
	closeArr()
	return b, total, true, used
}

func (r *groupRec) extraSortedOrNil() []int32 {
	if r == nil {
		return nil
	}
	return r.extraSorted
}

// graphUsers serves GET /users with $select, $top (≤ 999) and nextLinks
// carrying the query (protocol §5.1).
func (e *Emulator) graphUsers(gc *graphCtx) {
	q := lowerQuery(gc.r)
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(gc.p.tid)
	if t == nil {
		gc.notFound(gc.p.tid)
		return
	}
	var tk deltaToken
	if s := q["$skiptoken"]; s != "" {
		var err error
		tk, err = e.decodeToken(s)
		if err != nil || tk.phase != phaseList || tk.tenant != t.id {
			gc.error(http.StatusBadRequest, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
			return
		}
	} else {
		for _, bad := range []string{"$skip", "$orderby", "$search"} {
			if _, ok := q[bad]; ok {
				gc.error(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported query option '"+bad+"'.")
				return
			}
		}
		set, ok := usersRes.selectSet(gc, q["$select"])
		if !ok {
			return
		}
		top := 100
		if v, ok := q["$top"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 999 {
				gc.error(http.StatusBadRequest, "Request_UnsupportedQuery", "Invalid page size specified: '"+v+"'. Must be between 1 and 999 inclusive.")
				return
			}
			top = n
		}
		tk = deltaToken{kind: 'u', phase: phaseList, tenant: t.id, sel: set, top: uint64(top)}
	}
	vb := getBuf()
	defer putBuf(vb)
	b := appendODataContext((*vb)[:0], gc.base, usersRes.context(tk.sel))
	value, slot, more := appendLiveUsers(nil, t, int(tk.pos), int(tk.top), tk.sel, false)
	if more {
		tk.pos = uint64(slot)
		b = append(b, `,"@odata.nextLink":"`...)
		b = append(b, gc.base...)
		b = append(b, "/v1.0/users?"...)
		b = append(b, usersRes.selectQuery(tk.sel)...)
		b = append(b, "$top="...)
		b = strconv.AppendUint(b, tk.top, 10)
		b = append(b, "&$skiptoken="...)
		b = append(b, e.encodeToken(tk)...)
		b = append(b, '"')
	}
	b = append(b, `,"value":[`...)
	b = append(b, value...)
	b = append(b, "]}"...)
	*vb = b
	gc.ok(b)
}

// graphUser serves GET /users/{id | userPrincipalName}.
func (e *Emulator) graphUser(gc *graphCtx) {
	id := gc.r.URL.Path[strings.LastIndexByte(gc.r.URL.Path, '/')+1:]
	set, ok := usersRes.selectSet(gc, lowerQuery(gc.r)["$select"])
	if !ok {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(gc.p.tid)
	if t == nil {
		gc.notFound(id)
		return
	}
	slot, ok := t.userSlot(id)
	if !ok {
		slot, ok = t.userByUPN(id)
	}
	if !ok || t.userState(slot) != stateLive {
		gc.notFound(id)
		return
	}
	b := appendODataContext(nil, gc.base, "users/$entity")
	b = append(b, ',')
	b = append(b, appendUser(nil, t, slot, set, false)[1:]...) // the user's properties without its '{'
	gc.ok(b)
}
