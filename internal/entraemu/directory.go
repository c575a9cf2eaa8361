package entraemu

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Errors returned by the in-process control methods.
var (
	// ErrNotFound means the tenant, user or group does not exist.
	ErrNotFound = errors.New("entraemu: not found")
	// ErrConflict means the object already exists or is in the wrong state.
	ErrConflict = errors.New("entraemu: conflict")
)

type objState uint8

const (
	stateLive objState = iota
	stateSoftDeleted
	stateHardDeleted
)

// userRec is a user that is not a pristine generated one.
type userRec struct {
	u           User
	seq         uint64 // tenant change sequence of the last change
	state       objState
	removedFrom []int32 // groups left by a soft delete, re-joined on restore
}

type memberState struct {
	seq     uint64
	removed bool
}

// groupRec is a group that is not a pristine generated one. Membership is
// the generated base range (if any) overlaid with extra: an entry there
// either adds a user or removes a base member; each carries the change seq
// so members@delta can report only changed memberships (protocol §5.3).
type groupRec struct {
	g           Group // Members unused
	seq         uint64
	state       objState
	baseStart   int
	baseLen     int
	extra       map[int32]memberState
	extraSorted []int32
}

type logEntry struct {
	seq  uint64
	slot int32
}

type servicePrincipal struct {
	id      string
	roles   []string
	enabled bool
	created time.Time
}

type tenantState struct {
	id          string // lower-case GUID
	displayName string
	domains     []string
	created     time.Time
	gen         *generator

	users    []*userRec // slot → record; nil = pristine generated user
	userIdx  map[string]int32
	upnIdx   map[string]int32
	groups   []*groupRec
	groupIdx map[string]int32

	live     int    // live users
	seq      uint64 // change sequence (protocol §5.2 delta state)
	userLog  []logEntry
	groupLog []logEntry

	deltaGen     uint64 // current delta token generation
	expiredBelow uint64 // tokens of older generations → 400 syncStateNotFound
	resetBelow   uint64 // tokens of older generations → 410 Gone

	sps map[string]*servicePrincipal // by client ID

	notify func(kind, id string, deleted bool) // queues change notifications
}

func (t *tenantState) defaultDomain() string { return t.domains[0] }

func (t *tenantState) initialDomain() string {
	for _, d := range t.domains {
		if strings.HasSuffix(d, ".onmicrosoft.com") {
			return d
		}
	}
	return t.domains[len(t.domains)-1]
}

// userCount is the number of users that are not deleted (for throttling
// size classes, protocol §5.7).
func (t *tenantState) userCount() int { return t.live }

func (t *tenantState) nextSeq() uint64 {
	t.seq++
	return t.seq
}

// user returns the user at slot (materialised) and whether it is live.
func (t *tenantState) user(slot int) (User, objState) {
	if r := t.users[slot]; r != nil {
		return r.u, r.state
	}
	return t.gen.fullUser(slot), stateLive
}

// userState is the state of the user at slot (without materialising it).
func (t *tenantState) userState(slot int) objState {
	if r := t.users[slot]; r != nil {
		return r.state
	}
	return stateLive
}

func (t *tenantState) userID(slot int) string {
	if r := t.users[slot]; r != nil {
		return r.u.ID
	}
	return t.gen.userID(slot)
}

func (t *tenantState) appendUserID(b []byte, slot int) []byte {
	if r := t.users[slot]; r != nil {
		return append(b, r.u.ID...)
	}
	return t.gen.appendUserID(b, slot)
}

func (t *tenantState) userSlot(id string) (int, bool) {
	id = strings.ToLower(id)
	if s, ok := t.userIdx[id]; ok {
		return int(s), true
	}
	if s, ok := t.gen.userSlot(id); ok {
		return s, true
	}
	return 0, false
}

func (t *tenantState) groupSlot(id string) (int, bool) {
	id = strings.ToLower(id)
	if s, ok := t.groupIdx[id]; ok {
		return int(s), true
	}
	if s, ok := t.gen.groupSlot(id); ok {
		return s, true
	}
	return 0, false
}

// userByUPN finds a live or deleted user by sign-in name.
func (t *tenantState) userByUPN(upn string) (int, bool) {
	upn = strings.ToLower(upn)
	if s, ok := t.upnIdx[upn]; ok {
		if r := t.users[s]; r != nil && strings.EqualFold(r.u.UserPrincipalName, upn) {
			return int(s), true
		}
	}
	if s, ok := t.gen.upnSlot(upn); ok && t.users[s] == nil {
		if strings.EqualFold(string(t.gen.appendUPN(nil, t.gen.user(s))), upn) {
			return s, true
		}
	}
	return 0, false
}

// rec materialises the record of user slot so it can change.
func (t *tenantState) rec(slot int) *userRec {
	if t.users[slot] == nil {
		u := t.gen.fullUser(slot)
		t.users[slot] = &userRec{u: u}
		t.upnIdx[strings.ToLower(u.UserPrincipalName)] = int32(slot)
	}
	return t.users[slot]
}

func (t *tenantState) grec(slot int) *groupRec {
	if t.groups[slot] == nil {
		start, n := t.gen.groupBase(slot)
		t.groups[slot] = &groupRec{g: t.gen.fullGroup(slot), baseStart: start, baseLen: n, extra: map[int32]memberState{}}
	}
	return t.groups[slot]
}

func (t *tenantState) group(slot int) (Group, objState) {
	if r := t.groups[slot]; r != nil {
		return r.g, r.state
	}
	return t.gen.fullGroup(slot), stateLive
}

// groupState is the state of the group at slot (without materialising it).
func (t *tenantState) groupState(slot int) objState {
	if r := t.groups[slot]; r != nil {
		return r.state
	}
	return stateLive
}

func (t *tenantState) groupID(slot int) string {
	if r := t.groups[slot]; r != nil {
		return r.g.ID
	}
	return t.gen.groupID(slot)
}

// baseRange is the generated member range of group gs.
func (t *tenantState) baseRange(gs int) (start, n int) {
	if r := t.groups[gs]; r != nil {
		return r.baseStart, r.baseLen
	}
	return t.gen.groupBase(gs)
}

// inBase reports whether user slot is in the generated range of a group.
func (t *tenantState) inBase(start, n, us int) bool {
	if n == 0 || us >= t.gen.users {
		return false
	}
	d := (us - start + t.gen.users) % t.gen.users
	return d < n
}

func (t *tenantState) isMember(gs, us int) bool {
	r := t.groups[gs]
	if r == nil {
		start, n := t.gen.groupBase(gs)
		return t.inBase(start, n, us)
	}
	if m, ok := r.extra[int32(us)]; ok {
		return !m.removed
	}
	return t.inBase(r.baseStart, r.baseLen, us)
}

// setMember adds or removes a membership at change seq.
func (t *tenantState) setMember(gs, us int, present bool, seq uint64) bool {
	if t.isMember(gs, us) == present {
		return false
	}
	r := t.grec(gs)
	if _, ok := r.extra[int32(us)]; !ok {
		i, _ := slices.BinarySearch(r.extraSorted, int32(us))
		r.extraSorted = slices.Insert(r.extraSorted, i, int32(us))
	}
	r.extra[int32(us)] = memberState{seq: seq, removed: !present}
	return true
}

// touchUser records a change of user slot for delta and change
// notifications (protocol §7: a hard delete is "deleted", every other
// change "updated").
func (t *tenantState) touchUser(slot int, seq uint64) {
	r := t.rec(slot)
	r.seq = seq
	t.userLog = append(t.userLog, logEntry{seq: seq, slot: int32(slot)})
	if t.notify != nil {
		t.notify("users", r.u.ID, r.state == stateHardDeleted)
	}
}

// touchGroup records a change of group slot, membership changes included.
func (t *tenantState) touchGroup(slot int, seq uint64) {
	r := t.grec(slot)
	r.seq = seq
	t.groupLog = append(t.groupLog, logEntry{seq: seq, slot: int32(slot)})
	if t.notify != nil {
		t.notify("groups", r.g.ID, r.state == stateHardDeleted)
	}
}

// members lists the current member user slots of a group in page order:
// the generated range first, then added users by slot.
func (t *tenantState) members(gs int, fn func(us int) bool) {
	r := t.groups[gs]
	start, n := t.baseRange(gs)
	for k := range n {
		us := (start + k) % t.gen.users
		if r != nil {
			if m, ok := r.extra[int32(us)]; ok && m.removed {
				continue
			}
		}
		if !fn(us) {
			return
		}
	}
	if r == nil {
		return
	}
	for _, us := range r.extraSorted {
		if m := r.extra[us]; !m.removed && !t.inBase(start, n, int(us)) {
			if !fn(int(us)) {
				return
			}
		}
	}
}

func (t *tenantState) addUser(u User) (int, error) {
	u.ID = strings.ToLower(u.ID)
	if !isGUID(u.ID) {
		return 0, fmt.Errorf("user id %q is not a GUID: %w", u.ID, ErrConflict)
	}
	if _, ok := t.userSlot(u.ID); ok {
		return 0, fmt.Errorf("user %s: %w", u.ID, ErrConflict)
	}
	if u.UserPrincipalName == "" {
		return 0, fmt.Errorf("user %s has no userPrincipalName: %w", u.ID, ErrConflict)
	}
	if _, ok := t.userByUPN(u.UserPrincipalName); ok {
		return 0, fmt.Errorf("user %s: %w", u.UserPrincipalName, ErrConflict)
	}
	slot := len(t.users)
	t.users = append(t.users, &userRec{u: u})
	t.live++
	t.userIdx[u.ID] = int32(slot)
	t.upnIdx[strings.ToLower(u.UserPrincipalName)] = int32(slot)
	return slot, nil
}

func (t *tenantState) addGroup(g Group) (int, error) {
	g.ID = strings.ToLower(g.ID)
	if !isGUID(g.ID) {
		return 0, fmt.Errorf("group id %q is not a GUID: %w", g.ID, ErrConflict)
	}
	if _, ok := t.groupSlot(g.ID); ok {
		return 0, fmt.Errorf("group %s: %w", g.ID, ErrConflict)
	}
	members := g.Members
	g.Members = nil
	slot := len(t.groups)
	t.groups = append(t.groups, &groupRec{g: g, extra: map[int32]memberState{}})
	t.groupIdx[g.ID] = int32(slot)
	for _, m := range members {
		us, ok := t.userSlot(m)
		if !ok {
			return 0, fmt.Errorf("group %s member %s: %w", g.ID, m, ErrNotFound)
		}
		t.setMember(slot, us, true, t.seq)
	}
	return slot, nil
}

// Directory is a snapshot of a tenant's live users and groups.
type Directory struct {
	// Users are the live users sorted by ID (Password omitted).
	Users []User
	// Groups are the live groups sorted by ID with sorted live Members.
	Groups []Group
}

// Directory returns the tenant's current (non-deleted) users and groups,
// sorted by ID, for exact comparisons with a synchronised copy. Unknown
// tenants yield an empty Directory.
func (e *Emulator) Directory(tenantID string) Directory {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tenant(tenantID)
	if t == nil {
		return Directory{}
	}
	var d Directory
	for s := range t.users {
		u, st := t.user(s)
		if st != stateLive {
			continue
		}
		u.Password = ""
		u.AppRoles = slices.Clone(u.AppRoles)
		u.DirectoryRoles = slices.Clone(u.DirectoryRoles)
		d.Users = append(d.Users, u)
	}
	for s := range t.groups {
		g, st := t.group(s)
		if st != stateLive {
			continue
		}
		g.Members = []string{}
		t.members(s, func(us int) bool {
			if t.userState(us) == stateLive {
				g.Members = append(g.Members, t.userID(us))
			}
			return true
		})
		slices.Sort(g.Members)
		d.Groups = append(d.Groups, g)
	}
	slices.SortFunc(d.Users, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
	return d
}

// CreateUser adds a user (ID generated when empty) and returns it.
func (e *Emulator) CreateUser(tenantID string, u User) (User, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return User{}, fmt.Errorf("create user in tenant %s: %w", tenantID, ErrNotFound)
	}
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	slot, err := t.addUser(u)
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	t.touchUser(slot, t.nextSeq())
	out := t.users[slot].u
	out.Password = ""
	return out, nil
}

// UpdateUser replaces every field of the user with ID u.ID (an empty
// Password keeps the old one).
func (e *Emulator) UpdateUser(tenantID string, u User) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, slot, err := e.live(userKind, tenantID, u.ID)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	r := t.rec(slot)
	if !strings.EqualFold(r.u.UserPrincipalName, u.UserPrincipalName) {
		if u.UserPrincipalName == "" {
			return fmt.Errorf("update user %s: empty userPrincipalName: %w", u.ID, ErrConflict)
		}
		if _, taken := t.userByUPN(u.UserPrincipalName); taken {
			return fmt.Errorf("update user %s: %s: %w", u.ID, u.UserPrincipalName, ErrConflict)
		}
		delete(t.upnIdx, strings.ToLower(r.u.UserPrincipalName))
		t.upnIdx[strings.ToLower(u.UserPrincipalName)] = int32(slot)
	}
	u.ID = r.u.ID
	if u.Password == "" {
		u.Password = r.u.Password
	}
	r.u = u
	t.touchUser(slot, t.nextSeq())
	return nil
}

// objKind is what the control methods look up users and groups by.
type objKind struct {
	name  string // "user" or "group" in errors
	slot  func(t *tenantState, id string) (int, bool)
	state func(t *tenantState, slot int) objState
}

var (
	userKind  = objKind{"user", (*tenantState).userSlot, (*tenantState).userState}
	groupKind = objKind{"group", (*tenantState).groupSlot, (*tenantState).groupState}
)

// live finds a live user or group.
func (e *Emulator) live(k objKind, tenantID, id string) (*tenantState, int, error) {
	t := e.tenant(tenantID)
	if t == nil {
		return nil, 0, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
	}
	slot, ok := k.slot(t, id)
	if !ok {
		return nil, 0, fmt.Errorf("%s %s: %w", k.name, id, ErrNotFound)
	}
	if k.state(t, slot) != stateLive {
		return nil, 0, fmt.Errorf("%s %s is deleted: %w", k.name, id, ErrNotFound)
	}
	return t, slot, nil
}

// deletable finds the user or group to delete: a live one, or with hard
// also a soft-deleted one.
func (e *Emulator) deletable(k objKind, tenantID, id string, hard bool) (*tenantState, int, objState, error) {
	t := e.tenant(tenantID)
	if t == nil {
		return nil, 0, 0, fmt.Errorf("delete %s: tenant %s: %w", k.name, tenantID, ErrNotFound)
	}
	slot, ok := k.slot(t, id)
	if !ok {
		return nil, 0, 0, fmt.Errorf("delete %s %s: %w", k.name, id, ErrNotFound)
	}
	st := k.state(t, slot)
	if st == stateHardDeleted || (st == stateSoftDeleted && !hard) {
		return nil, 0, 0, fmt.Errorf("delete %s %s: already deleted: %w", k.name, id, ErrNotFound)
	}
	return t, slot, st, nil
}

// DeleteUser soft-deletes (delta reports @removed "changed") or, with hard,
// permanently deletes (reason "deleted") a user (protocol §5.2). Its group
// memberships end (members@delta @removed, protocol §5.3). Hard-deleting a
// soft-deleted user is allowed.
func (e *Emulator) DeleteUser(tenantID, userID string, hard bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, slot, st, err := e.deletable(userKind, tenantID, userID, hard)
	if err != nil {
		return err
	}
	seq := t.nextSeq()
	r := t.rec(slot)
	if st == stateLive {
		t.live--
		for gs := range t.groups {
			if t.groupState(gs) != stateLive || !t.isMember(gs, slot) {
				continue
			}
			t.setMember(gs, slot, false, seq)
			t.touchGroup(gs, seq)
			r.removedFrom = append(r.removedFrom, int32(gs))
		}
	}
	r.state = stateSoftDeleted
	if hard {
		r.state = stateHardDeleted
		r.removedFrom = nil
		delete(t.upnIdx, strings.ToLower(r.u.UserPrincipalName))
	}
	t.touchUser(slot, seq)
	return nil
}

// RestoreUser restores a soft-deleted user with its group memberships.
func (e *Emulator) RestoreUser(tenantID, userID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("restore user: tenant %s: %w", tenantID, ErrNotFound)
	}
	slot, ok := t.userSlot(userID)
	if !ok || t.users[slot] == nil || t.users[slot].state != stateSoftDeleted {
		return fmt.Errorf("restore user %s: not soft-deleted: %w", userID, ErrNotFound)
	}
	seq := t.nextSeq()
	r := t.users[slot]
	r.state = stateLive
	t.live++
	for _, gs := range r.removedFrom {
		if t.groupState(int(gs)) == stateLive && t.setMember(int(gs), slot, true, seq) {
			t.touchGroup(int(gs), seq)
		}
	}
	r.removedFrom = nil
	t.touchUser(slot, seq)
	return nil
}

// CreateGroup adds a group (ID generated when empty) with its members.
func (e *Emulator) CreateGroup(tenantID string, g Group) (Group, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	if t == nil {
		return Group{}, fmt.Errorf("create group in tenant %s: %w", tenantID, ErrNotFound)
	}
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	for _, m := range g.Members {
		if _, _, err := e.live(userKind, tenantID, m); err != nil {
			return Group{}, fmt.Errorf("create group member: %w", err)
		}
	}
	seq := t.nextSeq()
	saved := t.seq
	t.seq = seq // members carry the creation seq
	slot, err := t.addGroup(g)
	t.seq = saved
	if err != nil {
		return Group{}, fmt.Errorf("create group: %w", err)
	}
	t.touchGroup(slot, seq)
	out := t.groups[slot].g
	out.Members = slices.Clone(g.Members)
	slices.Sort(out.Members)
	return out, nil
}

// UpdateGroup replaces the display name and description of group g.ID
// (Members is ignored; use AddMember and RemoveMember).
func (e *Emulator) UpdateGroup(tenantID string, g Group) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, slot, err := e.live(groupKind, tenantID, g.ID)
	if err != nil {
		return fmt.Errorf("update group: %w", err)
	}
	r := t.grec(slot)
	r.g.DisplayName, r.g.Description = g.DisplayName, g.Description
	t.touchGroup(slot, t.nextSeq())
	return nil
}

// DeleteGroup soft- or hard-deletes a group (delta @removed "changed" or
// "deleted").
func (e *Emulator) DeleteGroup(tenantID, groupID string, hard bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, slot, _, err := e.deletable(groupKind, tenantID, groupID, hard)
	if err != nil {
		return err
	}
	r := t.grec(slot)
	r.state = stateSoftDeleted
	if hard {
		r.state = stateHardDeleted
	}
	t.touchGroup(slot, t.nextSeq())
	return nil
}

// AddMember adds a live user to a live group.
func (e *Emulator) AddMember(tenantID, groupID, userID string) error {
	return e.changeMember(tenantID, groupID, userID, true)
}

// RemoveMember removes a user from a group (members@delta @removed).
func (e *Emulator) RemoveMember(tenantID, groupID, userID string) error {
	return e.changeMember(tenantID, groupID, userID, false)
}

func (e *Emulator) changeMember(tenantID, groupID, userID string, present bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, gs, err := e.live(groupKind, tenantID, groupID)
	if err != nil {
		return fmt.Errorf("change member: %w", err)
	}
	_, us, err := e.live(userKind, tenantID, userID)
	if err != nil {
		return fmt.Errorf("change member: %w", err)
	}
	if t.isMember(gs, us) == present {
		return nil
	}
	seq := t.nextSeq()
	t.setMember(gs, us, present, seq)
	t.touchGroup(gs, seq)
	return nil
}
