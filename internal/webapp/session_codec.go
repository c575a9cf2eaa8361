package webapp

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/alexedwards/scs/v2"
)

// sessionCodec stores a session as JSON with its typed values
// (scs.Codec). scs's default, gob, writes its type descriptors into every
// session and decodes them again on every request: about 7% of the CPU of
// a consent callback.
type sessionCodec struct{}

// sessionJSON is a session as stored.
type sessionJSON struct {
	Deadline time.Time      `json:"deadline"`
	User     *SessionUser   `json:"user,omitempty"`
	SignIn   *pendingSignIn `json:"signin,omitempty"`
	CSRF     string         `json:"csrf,omitempty"`
	Flash    *consoleFlash  `json:"flash,omitempty"`
}

// Encode writes the session; a value under an unknown key, or of another
// type than its key holds, is an error rather than a silent loss.
func (sessionCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	s := sessionJSON{Deadline: deadline}
	for k, v := range values {
		switch v := v.(type) {
		case SessionUser:
			if k == keyUser {
				s.User = &v
				continue
			}
		case pendingSignIn:
			if k == keySignIn {
				s.SignIn = &v
				continue
			}
		case consoleFlash:
			if k == keyFlash {
				s.Flash = &v
				continue
			}
		case string:
			if k == keyCSRF {
				s.CSRF = v
				continue
			}
		}
		return nil, fmt.Errorf("session value %q of type %T cannot be stored", k, v)
	}
	return json.Marshal(s)
}

// Decode reads a session; one that is not JSON was written by scs's gob
// codec before this one and is read with it, so sessions survive an upgrade.
func (sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	if len(b) == 0 || b[0] != '{' {
		return scs.GobCodec{}.Decode(b)
	}
	var s sessionJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, nil, fmt.Errorf("decode session: %w", err)
	}
	values := make(map[string]any, 4)
	if s.User != nil {
		values[keyUser] = *s.User
	}
	if s.SignIn != nil {
		values[keySignIn] = *s.SignIn
	}
	if s.CSRF != "" {
		values[keyCSRF] = s.CSRF
	}
	if s.Flash != nil {
		values[keyFlash] = *s.Flash
	}
	return s.Deadline, values, nil
}
