package entraemu

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// The Graph pages are written with append-style encoders into pooled
// buffers: users/delta for a million users must produce ≥100,000 users/s
// of JSON on one core (issue 3).

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 8<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (HTML-safe like encoding/json).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendField appends ,"name":"value" (or null when value is empty).
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	if value == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, value)
}

// Property sets for $select (bit per property).
type propSet uint32

type propDef struct {
	name string
	bit  propSet
}

const (
	uID propSet = 1 << iota
	uDisplayName
	uGivenName
	uSurname
	uUPN
	uMail
	uJobTitle
	uAccountEnabled
	uBusinessPhones
	uMobilePhone
	uOfficeLocation
	uPreferredLanguage
	uUserType
)

var userProps = []propDef{
	{"id", uID}, {"displayName", uDisplayName}, {"givenName", uGivenName}, {"surname", uSurname},
	{"userPrincipalName", uUPN}, {"mail", uMail}, {"jobTitle", uJobTitle}, {"accountEnabled", uAccountEnabled},
	{"businessPhones", uBusinessPhones}, {"mobilePhone", uMobilePhone}, {"officeLocation", uOfficeLocation},
	{"preferredLanguage", uPreferredLanguage}, {"userType", uUserType},
}

// userDefault is the property set without $select (protocol §5.1).
const userDefault = uBusinessPhones | uDisplayName | uGivenName | uID | uJobTitle | uMail | uMobilePhone |
	uOfficeLocation | uPreferredLanguage | uSurname | uUPN

const (
	gID propSet = 1 << iota
	gDisplayName
	gDescription
	gMembers
	gMailEnabled
	gSecurityEnabled
	gGroupTypes
	gMail
	gMailNickname
)

var groupProps = []propDef{
	{"id", gID}, {"displayName", gDisplayName}, {"description", gDescription}, {"members", gMembers},
	{"mailEnabled", gMailEnabled}, {"securityEnabled", gSecurityEnabled}, {"groupTypes", gGroupTypes},
	{"mail", gMail}, {"mailNickname", gMailNickname},
}

const groupDefault = gID | gDisplayName | gDescription | gMembers | gMailEnabled | gSecurityEnabled | gGroupTypes | gMail | gMailNickname

// parseSelect maps a $select list to a set; unknown names are returned.
func parseSelect(sel string, defs []propDef, def propSet) (propSet, string) {
	if strings.TrimSpace(sel) == "" {
		return def, ""
	}
	var set propSet = defs[0].bit // id is always returned
	for name := range strings.SplitSeq(sel, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, d := range defs {
			if strings.EqualFold(d.name, name) {
				set |= d.bit
				found = true
				break
			}
		}
		if !found {
			return 0, name
		}
	}
	return set, ""
}

// selectList renders a set as "a,b,c" in canonical order (without id
// unless it is the only property).
func selectList(set propSet, defs []propDef) string {
	var names []string
	for _, d := range defs[1:] {
		if set&d.bit != 0 {
			names = append(names, d.name)
		}
	}
	if len(names) == 0 {
		return "id"
	}
	return strings.Join(names, ",")
}

// appendObjectID opens a user or group object: {"id":"…".
func appendObjectID(b []byte, id string) []byte {
	b = append(b, `{"id":`...)
	return appendJSONString(b, id)
}

// appendUser writes one user object. omitEmpty drops never-set (empty)
// properties as delta responses do (protocol §5.2).
func appendUser(b []byte, t *tenantState, slot int, set propSet, omitEmpty bool) []byte {
	r := t.users[slot]
	if r == nil {
		return appendGenUser(b, t.gen, slot, set, omitEmpty)
	}
	u := &r.u
	b = appendObjectID(b, u.ID)
	if set&uBusinessPhones != 0 {
		b = append(b, `,"businessPhones":[]`...)
	}
	if set&uDisplayName != 0 {
		b = appendField(b, "displayName", u.DisplayName)
	}
	if set&uGivenName != 0 {
		b = appendField(b, "givenName", u.GivenName)
	}
	if set&uJobTitle != 0 {
		b = appendField(b, "jobTitle", u.JobTitle)
	}
	if set&uMail != 0 {
		b = appendField(b, "mail", u.Mail)
	}
	b = appendNeverSet(b, set, omitEmpty)
	if set&uSurname != 0 {
		b = appendField(b, "surname", u.Surname)
	}
	if set&uUPN != 0 {
		b = appendField(b, "userPrincipalName", u.UserPrincipalName)
	}
	return appendUserEnd(b, set, u.AccountEnabled)
}

func appendNeverSet(b []byte, set propSet, omitEmpty bool) []byte {
	if omitEmpty {
		return b
	}
	if set&uMobilePhone != 0 {
		b = append(b, `,"mobilePhone":null`...)
	}
	if set&uOfficeLocation != 0 {
		b = append(b, `,"officeLocation":null`...)
	}
	if set&uPreferredLanguage != 0 {
		b = append(b, `,"preferredLanguage":null`...)
	}
	return b
}

// appendUserEnd writes the properties after userPrincipalName and closes
// the user object.
func appendUserEnd(b []byte, set propSet, enabled bool) []byte {
	if set&uAccountEnabled != 0 {
		if enabled { // one literal each: a single copy per user (hot path)
			b = append(b, `,"accountEnabled":true`...)
		} else {
			b = append(b, `,"accountEnabled":false`...)
		}
	}
	if set&uUserType != 0 {
		b = append(b, `,"userType":"Member"`...)
	}
	return append(b, '}')
}

// appendGenUser writes a pristine generated user without materialising it.
func appendGenUser(b []byte, g *generator, slot int, set propSet, omitEmpty bool) []byte {
	u := g.user(slot)
	b = append(b, `{"id":"`...)
	b = g.appendUserID(b, slot)
	b = append(b, '"')
	if set&uBusinessPhones != 0 {
		b = append(b, `,"businessPhones":[]`...)
	}
	if set&uDisplayName != 0 {
		b = append(b, `,"displayName":"`...)
		b = append(b, u.given...)
		b = append(b, ' ')
		b = append(b, u.surname...)
		b = append(b, '"')
	}
	if set&uGivenName != 0 {
		b = append(b, `,"givenName":"`...)
		b = append(b, u.given...)
		b = append(b, '"')
	}
	if set&uJobTitle != 0 {
		b = append(b, `,"jobTitle":"`...)
		b = append(b, u.job...)
		b = append(b, '"')
	}
	if set&uMail != 0 {
		b = append(b, `,"mail":"`...)
		b = g.appendUPN(b, u)
		b = append(b, '"')
	}
	b = appendNeverSet(b, set, omitEmpty)
	if set&uSurname != 0 {
		b = append(b, `,"surname":"`...)
		b = append(b, u.surname...)
		b = append(b, '"')
	}
	if set&uUPN != 0 {
		b = append(b, `,"userPrincipalName":"`...)
		b = g.appendUPN(b, u)
		b = append(b, '"')
	}
	return appendUserEnd(b, set, u.enabled)
}

// appendGroupProps writes a group's properties without the closing brace.
func appendGroupProps(b []byte, g Group, set propSet) []byte {
	b = appendObjectID(b, g.ID)
	if set&gDisplayName != 0 {
		b = appendField(b, "displayName", g.DisplayName)
	}
	if set&gDescription != 0 {
		b = appendField(b, "description", g.Description)
	}
	if set&gGroupTypes != 0 {
		b = append(b, `,"groupTypes":[]`...)
	}
	if set&gMail != 0 {
		b = append(b, `,"mail":null`...)
	}
	if set&gMailEnabled != 0 {
		b = append(b, `,"mailEnabled":false`...)
	}
	if set&gMailNickname != 0 {
		b = appendField(b, "mailNickname", nickname(g.DisplayName))
	}
	if set&gSecurityEnabled != 0 {
		b = append(b, `,"securityEnabled":true`...)
	}
	return b
}

func nickname(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
