package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// The fixed $select lists: only selected properties are tracked by delta
// (protocol §5.2); members makes groups/delta report members@delta (§5.3).
const (
	userSelect  = "id,userPrincipalName,displayName,givenName,surname,mail,jobTitle,accountEnabled"
	groupSelect = "id,displayName,description,members"
)

// UsersDeltaURL is the first request of a full users round.
func (c *Client) UsersDeltaURL() string { return c.base + "/users/delta?$select=" + userSelect }

// GroupsDeltaURL is the first request of a full groups round.
func (c *Client) GroupsDeltaURL() string { return c.base + "/groups/delta?$select=" + groupSelect }

type userJSON struct {
	ID                string         `json:"id"`
	UserPrincipalName string         `json:"userPrincipalName"`
	DisplayName       string         `json:"displayName"`
	GivenName         string         `json:"givenName"`
	Surname           string         `json:"surname"`
	Mail              string         `json:"mail"`
	JobTitle          string         `json:"jobTitle"`
	AccountEnabled    *bool          `json:"accountEnabled"`
	Removed           jsontext.Value `json:"@removed"`
}

type memberJSON struct {
	Type    string         `json:"@odata.type"`
	ID      string         `json:"id"`
	Removed jsontext.Value `json:"@removed"`
}

type groupJSON struct {
	ID          string         `json:"id"`
	DisplayName *string        `json:"displayName"`
	Description string         `json:"description"`
	Members     []memberJSON   `json:"members@delta"`
	Removed     jsontext.Value `json:"@removed"`
}

// UsersDelta fetches one users/delta page: link is a saved nextLink or
// deltaLink, or "" for the first page of a full round.
func (c *Client) UsersDelta(ctx context.Context, tenantID, link string, p *domain.UsersPage) error {
	if link == "" {
		link = c.UsersDeltaURL()
	}
	p.Stats = domain.RequestStats{}
	if err := c.get(ctx, tenantID, link, &p.Stats, func(r io.Reader) error { return decodeUsersPage(r, p) }); err != nil {
		return fmt.Errorf("users delta for tenant %s: %w", tenantID, err)
	}
	return checkLinks(p.NextLink, p.DeltaLink)
}

// decodeUsersPage reads one users/delta response body into p, reusing its
// slices.
func decodeUsersPage(r io.Reader, p *domain.UsersPage) error {
	// The map is sized for a page like the last one decoded into p (up to
	// fullPage): grown from empty, it rehashed several times a page.
	last := make(lastMentions[string], min(cap(p.Users), fullPage))
	p.Users, p.Removed, p.SoftDeleted, p.NextLink, p.DeltaLink = p.Users[:0], p.Removed[:0], p.SoftDeleted[:0], "", ""
	var soft map[string]bool // removal ID → soft; made on the first removal
	drop := func(removed bool, i int) {
		if removed {
			p.Removed[i] = ""
		} else {
			p.Users[i].ID = ""
		}
	}
	var u userJSON
	err := decodePage(r, &p.NextLink, &p.DeltaLink, func(dec *jsontext.Decoder) error {
		u = userJSON{Removed: u.Removed[:0]}
		if err := readUser(dec, &u); err != nil {
			return err
		}
		if u.ID == "" {
			return fmt.Errorf("user without id")
		}
		id := strings.ToLower(u.ID)
		if len(u.Removed) > 0 {
			last.mention(id, true, len(p.Removed), drop)
			p.Removed = append(p.Removed, id)
			if soft == nil {
				soft = map[string]bool{}
			}
			soft[id] = softRemoved(u.Removed)
			return nil
		}
		last.mention(id, false, len(p.Users), drop)
		enabled := true // accountEnabled is always set in Entra; absent only under return=minimal
		if u.AccountEnabled != nil {
			enabled = *u.AccountEnabled
		}
		p.Users = append(p.Users, domain.DirectoryUser{
			ID: id, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName, GivenName: u.GivenName,
			Surname: u.Surname, Mail: u.Mail, JobTitle: u.JobTitle, AccountEnabled: enabled,
		})
		return nil
	})
	if err != nil {
		return err
	}
	if len(last) != len(p.Users)+len(p.Removed) {
		p.Users = compact(p.Users, func(u domain.DirectoryUser) bool { return u.ID == "" })
		p.Removed = compact(p.Removed, func(s string) bool { return s == "" })
	}
	for _, id := range p.Removed {
		if soft[id] {
			p.SoftDeleted = append(p.SoftDeleted, id)
		}
	}
	return nil
}

// softRemoved reads an @removed annotation: reason "changed" is a soft
// delete (restorable), "deleted" a permanent one (protocol §5.2). Anything
// else counts as permanent: the copy loses the user either way, and only a
// soft delete is remembered for a later restore (docs/events.md).
func softRemoved(raw jsontext.Value) bool {
	var r struct {
		Reason string `json:"reason"`
	}
	return json.Unmarshal(raw, &r) == nil && r.Reason == "changed"
}

// GroupsDelta fetches one groups/delta page; see UsersDelta.
func (c *Client) GroupsDelta(ctx context.Context, tenantID, link string, p *domain.GroupsPage) error {
	if link == "" {
		link = c.GroupsDeltaURL()
	}
	p.Stats = domain.RequestStats{}
	if err := c.get(ctx, tenantID, link, &p.Stats, func(r io.Reader) error { return decodeGroupsPage(r, p) }); err != nil {
		return fmt.Errorf("groups delta for tenant %s: %w", tenantID, err)
	}
	return checkLinks(p.NextLink, p.DeltaLink)
}

// decodeGroupsPage reads one groups/delta response body into p, reusing its
// slices.
func decodeGroupsPage(r io.Reader, p *domain.GroupsPage) error {
	p.Groups, p.Removed, p.Members, p.MembersRemoved = p.Groups[:0], p.Removed[:0], p.Members[:0], p.MembersRemoved[:0]
	p.NextLink, p.DeltaLink = "", ""
	last := make(lastMentions[string], min(cap(p.Groups), fullPage))
	// A struct key, not "group|member": IDs are opaque strings, and two
	// joined pairs can spell the same key.
	member := make(lastMentions[domain.Membership], min(cap(p.Members), fullPage))
	dropGroup := func(removed bool, i int) {
		if removed {
			p.Removed[i] = ""
		} else {
			p.Groups[i].ID = ""
		}
	}
	dropMember := func(removed bool, i int) {
		if removed {
			p.MembersRemoved[i].GroupID = ""
		} else {
			p.Members[i].GroupID = ""
		}
	}
	var g groupJSON
	err := decodePage(r, &p.NextLink, &p.DeltaLink, func(dec *jsontext.Decoder) error {
		// readGroup appends each member as a new zero value, so nothing of
		// the last group's members survives into this one (a stale
		// @removed would turn an added member into a removed one).
		g = groupJSON{Members: g.Members[:0], Removed: g.Removed[:0]}
		if err := readGroup(dec, &g); err != nil {
			return err
		}
		if g.ID == "" {
			return fmt.Errorf("group without id")
		}
		id := strings.ToLower(g.ID)
		if len(g.Removed) > 0 {
			last.mention(id, true, len(p.Removed), dropGroup)
			p.Removed = append(p.Removed, id)
			return nil
		}
		// displayName is required on groups, so its absence marks a
		// repeat of a large group that carries only members (§5.3).
		if g.DisplayName != nil {
			last.mention(id, false, len(p.Groups), dropGroup)
			p.Groups = append(p.Groups, domain.Group{ID: id, DisplayName: *g.DisplayName, Description: g.Description})
		}
		for _, m := range g.Members {
			if m.ID == "" {
				continue
			}
			ms := domain.Membership{GroupID: id, MemberID: strings.ToLower(m.ID)}
			if len(m.Removed) > 0 {
				member.mention(ms, true, len(p.MembersRemoved), dropMember)
				p.MembersRemoved = append(p.MembersRemoved, ms)
			} else {
				member.mention(ms, false, len(p.Members), dropMember)
				p.Members = append(p.Members, ms)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(last) != len(p.Groups)+len(p.Removed) {
		p.Groups = compact(p.Groups, func(g domain.Group) bool { return g.ID == "" })
		p.Removed = compact(p.Removed, func(s string) bool { return s == "" })
	}
	if len(member) != len(p.Members)+len(p.MembersRemoved) {
		p.Members = compact(p.Members, func(m domain.Membership) bool { return m.GroupID == "" })
		p.MembersRemoved = compact(p.MembersRemoved, func(m domain.Membership) bool { return m.GroupID == "" })
	}
	return nil
}

// fullPage bounds how large a page's maps are made ahead: 999 objects, a
// large full round's page here (the emulator's and the benchmarks'). A
// buffer that held merged pages (dirsync) has far more capacity than one
// page needs; a larger page grows its maps as before.
const fullPage = 999

// lastMentions maps each key of one page to its latest mention: i for the
// i-th kept entry, -1-i for the i-th removed one. A page may name an object
// twice (protocol §5.2: replays and repeats happen); the last mention wins.
type lastMentions[K comparable] map[K]int

// mention records key's mention at index i of the removed or the kept list,
// and hands its earlier mention, if any, to drop (list and index).
func (m lastMentions[K]) mention(key K, removed bool, i int, drop func(removed bool, i int)) {
	if j, ok := m[key]; ok {
		if j >= 0 {
			drop(false, j)
		} else {
			drop(true, -1-j)
		}
	}
	if removed {
		m[key] = -1 - i
	} else {
		m[key] = i
	}
}

func compact[T any](s []T, drop func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if !drop(v) {
			out = append(out, v)
		}
	}
	return out
}

func checkLinks(next, delta string) error {
	// Facts §5.2: a page has exactly one of the two links.
	if (next == "") == (delta == "") {
		return &Error{Kind: ErrOther, Code: "badPage", Message: "delta page must carry exactly one of @odata.nextLink and @odata.deltaLink"}
	}
	return nil
}

// pageOptions decode delta pages as encoding/json did before them —
// member names match case-insensitively, invalid UTF-8 becomes U+FFFD —
// except that an object naming a member twice is refused as malformed
// (Graph never sends one; encoding/json let a repeated array fill the
// first one's elements, FuzzDeltaPage found). The refusal is the page's
// and the elements' own (decodePage, readObject), for the members they
// read: jsontext's check of every name of every object, skipped ones too,
// was an eighth of a page's decode in a profile, so the tokenizer allows
// duplicates.
var pageOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsontext.AllowInvalidUTF8(true))

// decodePage walks a collection response token by token: each element of
// "value" is decoded by elem as it arrives, so a page is never held whole.
// It reads with go-json-experiment/json's tokenizer (encoding/json/v2 to
// be), which reads an element in one pass where encoding/json's Decoder
// scans it twice, and the elements member by member (readUser, readGroup):
// BenchmarkDecodePages.
func decodePage(r io.Reader, next, delta *string, elem func(*jsontext.Decoder) error) error {
	dec := jsontext.NewDecoder(r, pageOptions, jsontext.AllowDuplicateNames(true))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.PeekKind() != '}' {
		t, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := t.String()
		switch name {
		case "@odata.nextLink", "@odata.deltaLink", "value":
			if seen[name] {
				return fmt.Errorf("page names %q twice", name)
			}
			seen[name] = true
		}
		switch name {
		case "@odata.nextLink":
			if err := jsonv2.UnmarshalDecode(dec, next, pageOptions); err != nil {
				return err
			}
		case "@odata.deltaLink":
			if err := jsonv2.UnmarshalDecode(dec, delta, pageOptions); err != nil {
				return err
			}
		case "value":
			if err := expectDelim(dec, '['); err != nil {
				return err
			}
			for dec.PeekKind() != ']' {
				if err := elem(dec); err != nil {
					return err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	// Nothing may follow the object (encoding/json's Decode did not look).
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("unexpected data after the page: %v", err)
	}
	return nil
}

func expectDelim(dec *jsontext.Decoder, d jsontext.Kind) error {
	t, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if t.Kind() != d {
		return fmt.Errorf("unexpected JSON token %v, want %v", t.Kind(), d)
	}
	return nil
}

// Organization is the tenant's /organization entry (protocol §5.4).
type Organization struct {
	ID          string
	DisplayName string
	Domains     []string // verified domains, the default first
}

// Organization reads the tenant's name and verified domains.
func (c *Client) Organization(ctx context.Context, tenantID string) (Organization, domain.RequestStats, error) {
	var st domain.RequestStats
	var body struct {
		Value []struct {
			ID              string `json:"id"`
			DisplayName     string `json:"displayName"`
			VerifiedDomains []struct {
				Name      string `json:"name"`
				IsDefault bool   `json:"isDefault"`
			} `json:"verifiedDomains"`
		} `json:"value"`
	}
	err := c.get(ctx, tenantID, c.base+"/organization?$select=id,displayName,verifiedDomains", &st, func(r io.Reader) error {
		return json.NewDecoder(io.LimitReader(r, 4<<20)).Decode(&body)
	})
	if err != nil {
		return Organization{}, st, fmt.Errorf("organization of tenant %s: %w", tenantID, err)
	}
	if len(body.Value) == 0 {
		return Organization{}, st, fmt.Errorf("organization of tenant %s: empty response", tenantID)
	}
	o := body.Value[0]
	org := Organization{ID: o.ID, DisplayName: o.DisplayName}
	for _, d := range o.VerifiedDomains {
		if d.IsDefault {
			org.Domains = append([]string{d.Name}, org.Domains...)
		} else {
			org.Domains = append(org.Domains, d.Name)
		}
	}
	return org, st, nil
}
