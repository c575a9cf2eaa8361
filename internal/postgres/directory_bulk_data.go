package postgres

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// The event payloads of bulk pages, built here rather than by
// jsonb_build_object: the same keys and values as userData, groupData and
// memberData (jsonb orders the keys itself), with IDs in the canonical form
// Postgres prints a uuid in.

func appendUserData(b []byte, id string, u *domain.DirectoryUser) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","user_principal_name":`...)
	b = appendJSONString(b, u.UserPrincipalName)
	b = append(b, `,"display_name":`...)
	b = appendJSONString(b, u.DisplayName)
	b = append(b, `,"given_name":`...)
	b = appendJSONString(b, u.GivenName)
	b = append(b, `,"surname":`...)
	b = appendJSONString(b, u.Surname)
	b = append(b, `,"mail":`...)
	b = appendJSONString(b, u.Mail)
	b = append(b, `,"job_title":`...)
	b = appendJSONString(b, u.JobTitle)
	b = append(b, `,"account_enabled":`...)
	b = strconv.AppendBool(b, u.AccountEnabled)
	return append(b, '}')
}

func appendGroupData(b []byte, id string, g *domain.Group) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","display_name":`...)
	b = appendJSONString(b, g.DisplayName)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, g.Description)
	return append(b, '}')
}

func appendMemberData(b []byte, m [2]guid) []byte {
	b = append(b, `{"group_id":"`...)
	b = append(b, m[0].text...)
	b = append(b, `","member_id":"`...)
	b = append(b, m[1].text...)
	return append(b, `"}`...)
}

// appendJSONString appends s as a JSON string: as is when it is plain
// printable ASCII, through encoding/json otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// guid is an object ID of a bulk page: as Postgres prints a uuid
// (8-4-4-4-12 lowercase hex), for payloads, and its 16 bytes, for COPY
// (pgx encodes a string into a uuid column only after a failed attempt
// that costs more than the rest of the row).
type guid struct {
	text string
	uuid pgtype.UUID
}

// parseGUID reads id in the 8-4-4-4-12 hex form Graph uses; ok is false
// for any other form, which bulk pages leave to the staged path.
func parseGUID(id string) (g guid, ok bool) {
	if len(id) != 36 {
		return g, false
	}
	lower := true
	n := 0
	for i := 0; i < 36; i++ {
		c := id[i]
		var v byte
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return g, false
			}
			continue
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v, lower = c-'A'+10, false
		default:
			return g, false
		}
		g.uuid.Bytes[n/2] |= v << (4 * (1 - n%2))
		n++
	}
	g.uuid.Valid = true
	g.text = id
	if !lower {
		g.text = strings.ToLower(id)
	}
	return g, true
}
