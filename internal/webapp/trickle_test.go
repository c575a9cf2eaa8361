package webapp

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/httpserver"
)

// trickle sends head, then the body one byte a second, as a slow or
// hostile client would, and returns what the server answered once it
// closed the connection. It fails the test if the server has not closed it
// within bound (the whole body would take far longer).
func trickle(t *testing.T, addr, head string, bound time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return // the server closed the connection
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	if err := conn.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server still held the connection after %s (answer so far: %.200q)", bound, got)
	}
	// io.ReadAll ends at EOF (nil) or at a reset: either way the server
	// closed the connection.
	return string(got)
}

// A client that declares a body and trickles it a byte a second is cut off
// by the server's read deadline, and the goroutine serving it ends. Not
// parallel: it counts the process's goroutines.
func TestTrickledRequestIsCutOff(t *testing.T) {
	tb := setup(t, func(o *setupOpts) {
		o.timeouts = httpserver.Timeouts{ReadHeader: time.Second, Read: 2 * time.Second}
	})
	addr := strings.TrimPrefix(tb.base, "http://")
	tid := uuid.NewString()
	insertTenants(t, tb.pool, consoleTenant{ID: tid, Name: "Slow Ltd", Domains: []string{"slow.example"}})
	// A complete exchange first, so that the pools the handlers use are
	// warm before the goroutines are counted.
	if got := trickle(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 30*time.Second); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("warm-up: %.200q", got)
	}
	before := runtime.NumGoroutine()

	const declared = "Content-Length: 100\r\n\r\n"
	for _, tt := range []struct{ name, head string }{
		{"a form post", "POST /signout HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" + declared},
		{"an API body", "POST /api/v1/tenants/" + tid + "/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testAPIToken +
			"\r\nContent-Type: application/json\r\n" + declared},
		{"a body where none belongs", "GET / HTTP/1.1\r\nHost: x\r\n" + declared},
		{"the headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := trickle(t, addr, tt.head, 30*time.Second)
			t.Logf("answer before the close: %.80q", got)
		})
	}

	// Every goroutine the four connections started has ended.
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before the slow clients:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
