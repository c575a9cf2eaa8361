package graph

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The elements of a delta page are read member by member off jsontext's
// tokenizer into the few fields the sync keeps, instead of through
// jsonv2's reflection: the reflective decode was most of a page's CPU,
// and a first sync of a large tenant decodes a 999-user page every few
// milliseconds (BenchmarkDecodePages). The rules are pageOptions': member
// names match case-insensitively (strings.EqualFold, as encoding/json
// matched them), invalid UTF-8 in a string becomes U+FFFD, an object
// naming one of its members twice is refused, a null leaves the field
// empty, and a value of another JSON kind than the field's is an error.
// FuzzDeltaPage checks the result against encoding/json.

// Members of a user (userJSON).
const (
	userID = iota
	userUPN
	userDisplayName
	userGivenName
	userSurname
	userMail
	userJobTitle
	userAccountEnabled
	userRemoved
)

var userNames = []string{"id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "jobTitle", "accountEnabled", "@removed"}

// readUser reads the next element of a users/delta page into u, which the
// caller has cleared.
func readUser(dec *jsontext.Decoder, u *userJSON) error {
	return readObject(dec, userNames, func(m int) error {
		switch m {
		case userID:
			return readString(dec, &u.ID)
		case userUPN:
			return readString(dec, &u.UserPrincipalName)
		case userDisplayName:
			return readString(dec, &u.DisplayName)
		case userGivenName:
			return readString(dec, &u.GivenName)
		case userSurname:
			return readString(dec, &u.Surname)
		case userMail:
			return readString(dec, &u.Mail)
		case userJobTitle:
			return readString(dec, &u.JobTitle)
		case userAccountEnabled:
			return readBool(dec, &u.AccountEnabled)
		default:
			return readRaw(dec, &u.Removed)
		}
	})
}

// Members of a group (groupJSON) and of a members@delta entry (memberJSON).
const (
	groupID = iota
	groupDisplayName
	groupDescription
	groupMembers
	groupRemoved
)

var groupNames = []string{"id", "displayName", "description", "members@delta", "@removed"}

const (
	memberType = iota
	memberID
	memberRemoved
)

var memberNames = []string{"@odata.type", "id", "@removed"}

// readGroup reads the next element of a groups/delta page into g, which
// the caller has cleared (g.Members empty); each member is appended as a
// new zero value before it is read.
func readGroup(dec *jsontext.Decoder, g *groupJSON) error {
	return readObject(dec, groupNames, func(m int) error {
		switch m {
		case groupID:
			return readString(dec, &g.ID)
		case groupDisplayName:
			return readStringPtr(dec, &g.DisplayName)
		case groupDescription:
			return readString(dec, &g.Description)
		case groupMembers:
			return readArray(dec, func() error {
				g.Members = append(g.Members, memberJSON{})
				e := &g.Members[len(g.Members)-1]
				return readObject(dec, memberNames, func(m int) error {
					switch m {
					case memberType:
						return readString(dec, &e.Type)
					case memberID:
						return readString(dec, &e.ID)
					default:
						return readRaw(dec, &e.Removed)
					}
				})
			})
		default:
			return readRaw(dec, &g.Removed)
		}
	})
}

// readObject reads the next value, an object or null, and calls read with
// the index in names of each member it names, for read to read its value;
// the values of other members are skipped. At most 64 names.
func readObject(dec *jsontext.Decoder, names []string, read func(i int) error) error {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '{':
	default:
		return wrongKind(dec, "an object")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var seen uint64
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		i := memberIndex(names, name)
		if i < 0 {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if seen&(1<<i) != 0 {
			return fmt.Errorf("duplicate member %q (names match regardless of case)", names[i])
		}
		seen |= 1 << i
		if err := read(i); err != nil {
			return fmt.Errorf("member %q: %w", names[i], err)
		}
	}
	_, err := dec.ReadToken()
	return err
}

// memberIndex is the index in names of the member name (a JSON string as
// written), matched as encoding/json matches, or -1.
func memberIndex(names []string, name jsontext.Value) int {
	raw := name[1 : len(name)-1]
	for i, n := range names { // Graph writes them as named: try that first
		if string(raw) == n {
			return i
		}
	}
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		b, err := jsontext.AppendUnquote(nil, name)
		if err != nil {
			return -1 // invalid UTF-8 names no member
		}
		raw = b
	}
	for i, n := range names {
		if strings.EqualFold(string(raw), n) {
			return i
		}
	}
	return -1
}

// readString reads the next value, a string or null (""), into dst.
func readString(dec *jsontext.Decoder, dst *string) error {
	switch dec.PeekKind() {
	case 'n':
		*dst = ""
		_, err := dec.ReadToken()
		return err
	case '"':
	default:
		return wrongKind(dec, "a string")
	}
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	if raw := v[1 : len(v)-1]; bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*dst = string(raw)
		return nil
	}
	// Escapes or invalid UTF-8: the library's unquoting, with its rules.
	return jsonv2.Unmarshal(v, dst, pageOptions)
}

// readStringPtr is readString into a pointer that null leaves nil.
func readStringPtr(dec *jsontext.Decoder, dst **string) error {
	if dec.PeekKind() == 'n' {
		*dst = nil
		_, err := dec.ReadToken()
		return err
	}
	var s string
	if err := readString(dec, &s); err != nil {
		return err
	}
	*dst = &s
	return nil
}

// readBool reads the next value, true, false or null (nil), into dst.
func readBool(dec *jsontext.Decoder, dst **bool) error {
	var b bool
	switch dec.PeekKind() {
	case 'n':
		*dst = nil
		_, err := dec.ReadToken()
		return err
	case 't':
		b = true
	case 'f':
	default:
		return wrongKind(dec, "true or false")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*dst = &b
	return nil
}

// readRaw copies the next value, whatever it is (null too), into dst.
func readRaw(dec *jsontext.Decoder, dst *jsontext.Value) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	*dst = append((*dst)[:0], v...)
	return nil
}

// readArray reads the next value, an array or null (no elements), calling
// elem to read each element.
func readArray(dec *jsontext.Decoder, elem func() error) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '[':
	default:
		return wrongKind(dec, "an array")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// wrongKind reads past a value of the wrong kind and says what was wanted;
// a syntax error in it wins.
func wrongKind(dec *jsontext.Decoder, want string) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return fmt.Errorf("JSON %s where %s belongs", kindName(v.Kind()), want)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "null"
}
