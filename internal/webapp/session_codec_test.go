package webapp

import (
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/google/go-cmp/cmp"
)

var codecSample = map[string]any{
	keyUser: SessionUser{TenantID: contosoID, ObjectID: "c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6", Username: contosoAdm,
		Name: "Contoso Admin", DirectoryRoles: []string{"62e90394-69f5-4237-9190-012177145e10"}, AppRoles: []string{"Operator"},
		SignedInAt: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC), Binding: "b1"},
	keySignIn: pendingSignIn{State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/tenant", Issued: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)},
	keyCSRF:   "csrf-token",
	keyFlash:  consoleFlash{TenantID: contosoID, Done: "sync"},
}

// jsonSessionBeforeCSRF is a session as this codec wrote it before the
// CSRF token moved into the session (issue #10).
const jsonSessionBeforeCSRF = `{"deadline":"2026-11-29T16:00:00Z","user":{"TenantID":"98c7e7b9-8621-4041-9670-f4938facd9f6",` +
	`"ObjectID":"o","Username":"admin@contoso.example","Name":"Contoso Admin",` +
	`"DirectoryRoles":["62e90394-69f5-4237-9190-012177145e10"],"AppRoles":null,"SignedInAt":"2026-11-29T08:00:00Z","Binding":"b1"}}`

// TestSessionCodec: sessions round-trip with their types, sessions written
// by scs's gob codec still read, and a value the codec cannot type is an
// error, not a silent loss.
func TestSessionCodec(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	b, err := sessionCodec{}.Encode(deadline, codecSample)
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := sessionCodec{}.Decode(b)
	if err != nil || !gotDeadline.Equal(deadline) {
		t.Fatalf("decode: %v, deadline %v", err, gotDeadline)
	}
	if d := cmp.Diff(codecSample, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}

	old, err := scs.GobCodec{}.Encode(deadline, map[string]any{keyUser: codecSample[keyUser]})
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := (sessionCodec{}).Decode(old); err != nil || !cmp.Equal(got[keyUser], codecSample[keyUser]) {
		t.Errorf("gob session: %v, %v", err, got)
	}

	_, got, err = sessionCodec{}.Decode([]byte(jsonSessionBeforeCSRF))
	if u, ok := got[keyUser].(SessionUser); err != nil || !ok || !u.IsAdmin() || u.Binding != "b1" || got[keyCSRF] != nil {
		t.Errorf("session from before the CSRF token: %v, %#v", err, got)
	}

	for name, values := range map[string]map[string]any{
		"unknown key":     {"flash": "hello"},
		"type of its key": {keyUser: pendingSignIn{}},
		"csrf not text":   {keyCSRF: 1},
	} {
		if _, err := (sessionCodec{}).Encode(deadline, values); err == nil || !strings.Contains(err.Error(), "cannot be stored") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkSessionDecode compares decoding a signed-in session with this
// codec and with scs's gob codec (the baseline, in the same run).
func BenchmarkSessionDecode(b *testing.B) {
	deadline := time.Now()
	values := map[string]any{keyUser: codecSample[keyUser]}
	for _, c := range []struct {
		name  string
		codec scs.Codec
	}{{"json", sessionCodec{}}, {"gob", scs.GobCodec{}}} {
		data, err := c.codec.Encode(deadline, values)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(data)), "bytes")
			for b.Loop() {
				if _, _, err := c.codec.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
