package entraemu

import (
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"strings"
)

// generator computes generated users and groups from (tenant ID, seed, slot)
// on the fly. Generated GUIDs embed the slot (xor a per-tenant key) so an ID
// maps back to its slot without an index: a million users cost no memory
// until they change.
type generator struct {
	users, groups, perGroup int
	allGroup                bool
	seed                    uint64
	domain                  string
	uHi, uMid, gHi, gMid    uint64 // fixed GUID parts per tenant and kind
	uKey, gKey              uint32
}

func mix64(x uint64) uint64 { // splitmix64 finaliser
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(s)))
	return h.Sum64()
}

func newGenerator(tenantID, domain string, g *Generate) *generator {
	if g == nil {
		return &generator{}
	}
	base := mix64(uint64(g.Seed) ^ hashString(tenantID))
	gen := &generator{
		users: max(g.Users, 0), groups: max(g.Groups, 0), perGroup: max(g.MembersPerGroup, 0),
		allGroup: g.AllUsersGroup && g.Users > 0, seed: base, domain: domain,
	}
	if gen.allGroup {
		gen.groups++
	}
	gen.perGroup = min(gen.perGroup, gen.users)
	gen.uHi, gen.uMid, gen.uKey = guidParts(base, 1)
	gen.gHi, gen.gMid, gen.gKey = guidParts(base, 2)
	return gen
}

func guidParts(base, kind uint64) (hi, mid uint64, key uint32) {
	hi = mix64(base ^ kind*0x51a7)
	hi = hi&^0xF000 | 0x4000 // version 4
	m := mix64(hi ^ kind)
	mid = (m>>34)&0x3FFFFFFF | 0x80000000 // variant 10xx in the top bits
	key = uint32(m)
	return hi, mid, key
}

func appendGUID(b []byte, hi, lo uint64) []byte {
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	var out [36]byte
	hex.Encode(out[0:8], raw[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], raw[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], raw[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], raw[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], raw[10:16])
	return append(b, out[:]...)
}

// parseGUID returns the two 64-bit halves of a canonical GUID.
func parseGUID(s string) (hi, lo uint64, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return 0, 0, false
	}
	var raw [16]byte
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		// Pairs never straddle a dash: a dash anywhere else is refused
		// here, not read past the end.
		a, ok1 := unhex(s[i])
		b, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return 0, 0, false
		}
		raw[j] = a<<4 | b
		j++
		i += 2
	}
	for i := range 8 {
		hi = hi<<8 | uint64(raw[i])
		lo = lo<<8 | uint64(raw[8+i])
	}
	return hi, lo, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isGUID(s string) bool {
	_, _, ok := parseGUID(s)
	return ok
}

// slotMul scrambles slots inside GUIDs (odd, so invertible mod 2^32).
const slotMul uint32 = 0x9e3779b1

var slotMulInv = func() uint32 {
	x := slotMul // Newton iteration for the inverse mod 2^32
	for range 5 {
		x *= 2 - slotMul*x
	}
	return x
}()

func scramble(slot int, key uint32) uint64 { return uint64(uint32(slot)*slotMul ^ key) }

func unscramble(lo uint64, key uint32) int { return int((uint32(lo) ^ key) * slotMulInv) }

func (g *generator) userID(slot int) string {
	return string(g.appendUserID(make([]byte, 0, 36), slot))
}

func (g *generator) appendUserID(b []byte, slot int) []byte {
	return appendGUID(b, g.uHi, g.uMid<<32|scramble(slot, g.uKey))
}

func (g *generator) groupID(slot int) string {
	return string(appendGUID(make([]byte, 0, 36), g.gHi, g.gMid<<32|scramble(slot, g.gKey)))
}

// userSlot maps a generated user ID back to its slot.
func (g *generator) userSlot(id string) (int, bool) {
	hi, lo, ok := parseGUID(id)
	if !ok || g.users == 0 || hi != g.uHi || lo>>32 != g.uMid {
		return 0, false
	}
	s := unscramble(lo, g.uKey)
	return s, s < g.users
}

func (g *generator) groupSlot(id string) (int, bool) {
	hi, lo, ok := parseGUID(id)
	if !ok || g.groups == 0 || hi != g.gHi || lo>>32 != g.gMid {
		return 0, false
	}
	s := unscramble(lo, g.gKey)
	return s, s < g.groups
}

var givenNames = []string{"Ada", "Alan", "Amara", "Ana", "Ben", "Bianca", "Carlos", "Chen", "Chloe", "Dev", "Diego", "Elena",
	"Emma", "Eric", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jin", "Julia", "Kai", "Kenji",
	"Lara", "Leo", "Lina", "Luca", "Maya", "Mateo", "Mei", "Nadia", "Nico", "Noah", "Olga", "Omar", "Paula", "Priya",
	"Quinn", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Tess", "Uma", "Victor", "Wen", "Xavier", "Yara", "Yusuf",
	"Zane", "Zoe", "Aiko", "Bruno", "Camila", "Dara", "Emil", "Farah", "Gabriel", "Helga"}

var surnames = []string{"Adams", "Alvarez", "Bauer", "Berg", "Brown", "Castro", "Chen", "Costa", "Dubois", "Eriksson", "Evans",
	"Fischer", "Garcia", "Gomez", "Hansen", "Haddad", "Ito", "Jansen", "Johnson", "Kaur", "Kim", "Kowalski", "Larsen",
	"Lee", "Lopez", "Martin", "Meyer", "Moreau", "Muller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel",
	"Perez", "Petrov", "Quinn", "Rossi", "Ruiz", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka",
	"Taylor", "Torres", "Usman", "Vargas", "Wagner", "Walker", "Wang", "Weber", "Wilson", "Xu", "Yamada", "Young",
	"Zhang", "Ziegler", "Abebe", "Banda", "Mensah"}

var jobTitles = []string{"Engineer", "Senior Engineer", "Analyst", "Accountant", "Designer", "Sales Manager", "Consultant",
	"Support Specialist", "Product Manager", "Recruiter", "Marketing Lead", "Technician", "Lawyer", "Nurse", "Buyer", "Director"}

var departments = []string{"Sales", "Engineering", "Finance", "Marketing", "Support", "Legal", "Operations", "Research",
	"Human Resources", "Procurement", "Security", "Design"}

type genUser struct {
	given, surname, job string
	n                   int
	enabled             bool
}

func (g *generator) user(slot int) genUser {
	h := mix64(g.seed ^ uint64(slot)*0x9e3779b97f4a7c15)
	return genUser{
		given:   givenNames[h%uint64(len(givenNames))],
		surname: surnames[(h>>16)%uint64(len(surnames))],
		job:     jobTitles[(h>>32)%uint64(len(jobTitles))],
		n:       slot + 1,
		enabled: (h>>48)%97 != 0,
	}
}

// appendUPN writes "given.surname.N@domain" in lower case.
func (g *generator) appendUPN(b []byte, u genUser) []byte {
	b = appendLower(b, u.given)
	b = append(b, '.')
	b = appendLower(b, u.surname)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(u.n), 10)
	b = append(b, '@')
	return append(b, g.domain...)
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// fullUser materialises generated user slot as a User.
func (g *generator) fullUser(slot int) User {
	u := g.user(slot)
	upn := string(g.appendUPN(nil, u))
	return User{
		ID: g.userID(slot), UserPrincipalName: upn, DisplayName: u.given + " " + u.surname,
		GivenName: u.given, Surname: u.surname, Mail: upn, JobTitle: u.job, AccountEnabled: u.enabled,
	}
}

// upnSlot maps a generated UPN back to its slot (the caller verifies it).
func (g *generator) upnSlot(upn string) (int, bool) {
	at := strings.LastIndexByte(upn, '@')
	if at < 0 || !strings.EqualFold(upn[at+1:], g.domain) {
		return 0, false
	}
	dot := strings.LastIndexByte(upn[:at], '.')
	if dot < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(upn[dot+1 : at])
	if err != nil || n < 1 || n > g.users {
		return 0, false
	}
	return n - 1, true
}

// groupBase returns the generated member range of group slot gs: members
// are user slots (start+k) mod users for k < n.
func (g *generator) groupBase(gs int) (start, n int) {
	if g.users == 0 {
		return 0, 0
	}
	if g.allGroup && gs == 0 {
		return 0, g.users
	}
	return int(mix64(g.seed^uint64(gs)*0x2545f4914f6cdd1d) % uint64(g.users)), g.perGroup
}

func (g *generator) fullGroup(gs int) Group {
	if g.allGroup && gs == 0 {
		return Group{ID: g.groupID(gs), DisplayName: "All Users", Description: "Every generated user of the tenant"}
	}
	d := departments[mix64(g.seed^uint64(gs))%uint64(len(departments))]
	return Group{ID: g.groupID(gs), DisplayName: d + " Team " + strconv.Itoa(gs+1),
		Description: "Generated " + d + " group " + strconv.Itoa(gs+1)}
}
