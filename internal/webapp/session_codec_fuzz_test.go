package webapp

import (
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/google/go-cmp/cmp"
)

// FuzzSessionCodec checks the session codec two ways. Values built from the
// fuzzed fields come back from Encode and Decode as they went in (strings
// as JSON stores them). And any stored bytes, JSON or gob, either fail to
// decode or decode to typed values that survive a second round trip
// unchanged; nothing panics.
func FuzzSessionCodec(f *testing.F) {
	deadline := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	stored, err := sessionCodec{}.Encode(deadline, codecSample)
	if err != nil {
		f.Fatal(err)
	}
	gob, err := scs.GobCodec{}.Encode(deadline, codecSample)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stored, contosoID, contosoAdm, "62e90394-69f5-4237-9190-012177145e10", "b1", "s", "/tenant", deadline.UnixNano(), int64(0), true, true)
	f.Add(gob, "", "", "", "", "", "", int64(0), int64(-1), false, true)
	f.Add([]byte(`{"deadline":"2026-11-29T16:00:00+01:00","user":{"TenantID":"\u00e4","DirectoryRoles":null},"signin":{}}`),
		"\xff", "<&>", "\u2028", "", "\x00", "//evil.example", int64(1), int64(1<<62), true, false)
	f.Add([]byte(`{"user":{"SignedInAt":"0001-01-01T00:00:00Z"},"flash":"x"}`), "", "", "", "", "", "", int64(0), int64(0), false, false)
	f.Fuzz(func(t *testing.T, raw []byte, tenant, name, role, binding, state, returnTo string, at, issued int64, withUser, withSignIn bool) {
		values := map[string]any{}
		if withUser {
			values[keyUser] = SessionUser{TenantID: tenant, ObjectID: tenant, Username: name, Name: name,
				DirectoryRoles: []string{role}, AppRoles: []string{role, name}, SignedInAt: time.Unix(0, at).UTC(), Binding: binding}
		}
		if withSignIn {
			values[keySignIn] = pendingSignIn{State: state, Nonce: binding, Verifier: state, ReturnTo: returnTo, Issued: time.Unix(0, issued).UTC()}
		}
		b, err := sessionCodec{}.Encode(time.Unix(0, at), values)
		if err != nil {
			t.Fatalf("encode %+v: %v", values, err)
		}
		gotDeadline, got, err := sessionCodec{}.Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !gotDeadline.Equal(time.Unix(0, at)) {
			t.Errorf("deadline %v, want %v", gotDeadline, time.Unix(0, at))
		}
		if d := cmp.Diff(asJSONStores(values), got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}

		d1, v1, err := sessionCodec{}.Decode(raw)
		if err != nil {
			return
		}
		for k, v := range v1 {
			switch v.(type) {
			case SessionUser:
				if k == keyUser {
					continue
				}
			case pendingSignIn:
				if k == keySignIn {
					continue
				}
			case string:
				if k == keyCSRF {
					continue
				}
			case consoleFlash:
				if k == keyFlash {
					continue
				}
			}
			// Only gob sessions of older releases may hold other values;
			// Encode must then refuse them rather than drop them.
			if len(raw) > 0 && raw[0] == '{' {
				t.Fatalf("JSON session decoded %q to a %T", k, v)
			}
			if _, err := (sessionCodec{}).Encode(d1, v1); err == nil {
				t.Fatalf("session with %q of type %T encoded without error", k, v)
			}
			return
		}
		b2, err := sessionCodec{}.Encode(d1, v1)
		if err != nil {
			// Only a time without an RFC 3339 form (a gob session's year
			// 10000, say) may be refused, and never silently altered.
			if allRFC3339(d1, v1) {
				t.Fatalf("re-encode of a decoded session: %v", err)
			}
			return
		}
		d2, v2, err := sessionCodec{}.Decode(b2)
		if err != nil || !d2.Equal(d1) {
			t.Fatalf("second decode: %v, deadline %v, want %v", err, d2, d1)
		}
		if d := cmp.Diff(asJSONStores(v1), v2); d != "" {
			t.Errorf("second round trip (-first +second):\n%s", d)
		}
	})
}

// asJSONStores returns the session values with every string as a JSON round
// trip gives it back.
func asJSONStores(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	texts := func(ss []string) []string {
		if ss == nil {
			return nil
		}
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = jsonText(s)
		}
		return out
	}
	for k, v := range values {
		switch v := v.(type) {
		case SessionUser:
			v.TenantID, v.ObjectID, v.Username, v.Name, v.Binding = jsonText(v.TenantID), jsonText(v.ObjectID), jsonText(v.Username), jsonText(v.Name), jsonText(v.Binding)
			v.DirectoryRoles, v.AppRoles = texts(v.DirectoryRoles), texts(v.AppRoles)
			out[k] = v
		case pendingSignIn:
			v.State, v.Nonce, v.Verifier, v.ReturnTo = jsonText(v.State), jsonText(v.Nonce), jsonText(v.Verifier), jsonText(v.ReturnTo)
			out[k] = v
		default:
			out[k] = v
		}
	}
	return out
}

// allRFC3339 reports whether every time of a session has a JSON form.
func allRFC3339(deadline time.Time, values map[string]any) bool {
	times := []time.Time{deadline}
	if u, ok := values[keyUser].(SessionUser); ok {
		times = append(times, u.SignedInAt)
	}
	if p, ok := values[keySignIn].(pendingSignIn); ok {
		times = append(times, p.Issued)
	}
	for _, t := range times {
		if _, err := t.MarshalJSON(); err != nil {
			return false
		}
	}
	return true
}
