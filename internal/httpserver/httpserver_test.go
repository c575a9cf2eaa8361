package httpserver

import (
	"net/http"
	"testing"
	"time"
)

// Every listener gets all four timeouts: a zero field takes its default,
// a set one is kept.
func TestNewSetsEveryTimeout(t *testing.T) {
	t.Parallel()
	h := http.NotFoundHandler()
	for _, tt := range []struct {
		name string
		in   Timeouts
		want Timeouts
	}{
		{"defaults", Timeouts{}, Defaults},
		{"some set", Timeouts{Read: time.Second, Idle: time.Minute}, Timeouts{ReadHeader: Defaults.ReadHeader, Read: time.Second, Write: Defaults.Write, Idle: time.Minute}},
	} {
		s := New(h, tt.in)
		got := Timeouts{ReadHeader: s.ReadHeaderTimeout, Read: s.ReadTimeout, Write: s.WriteTimeout, Idle: s.IdleTimeout}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
		if s.Handler == nil || s.MaxHeaderBytes != MaxHeaderBytes {
			t.Errorf("%s: handler %v, MaxHeaderBytes %d", tt.name, s.Handler, s.MaxHeaderBytes)
		}
	}
	for name, d := range map[string]time.Duration{"ReadHeader": Defaults.ReadHeader, "Read": Defaults.Read, "Write": Defaults.Write, "Idle": Defaults.Idle} {
		if d <= 0 {
			t.Errorf("default %s is %s: unbounded", name, d)
		}
	}
	if Defaults.Write <= 10*time.Second {
		t.Errorf("default Write %s does not exceed the server's 10 s request timeout", Defaults.Write)
	}
}
