package entraemu

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a notification endpoint on loopback http (the emulator's
// documented exception to https). It answers validation handshakes with
// validate and notification POSTs with 202, or 503 while fail > 0; only
// accepted batches are recorded.
type receiver struct {
	*httptest.Server
	mu          sync.Mutex
	validate    func(w http.ResponseWriter, r *http.Request, token string)
	tokens      []string
	batches     [][]map[string]any
	fail        int
	failedPosts int
	changed     chan struct{} // signalled after every notification POST
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{changed: make(chan struct{}, 1), validate: echoToken}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

// newTLSReceiver is a receiver on https with cert (nil: httptest's own,
// untrusted by the emulator).
func newTLSReceiver(t *testing.T, cert *tls.Certificate) *receiver {
	t.Helper()
	rc := &receiver{changed: make(chan struct{}, 1), validate: echoToken}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	if cert != nil {
		rc.Server.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	rc.StartTLS()
	t.Cleanup(rc.Close)
	return rc
}

func echoToken(w http.ResponseWriter, _ *http.Request, token string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, token)
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if tok := r.URL.Query().Get("validationToken"); tok != "" {
		rc.mu.Lock()
		rc.tokens = append(rc.tokens, tok)
		v := rc.validate
		rc.mu.Unlock()
		v(w, r, tok)
		return
	}
	var body struct {
		Value []map[string]any `json:"value"`
	}
	b, _ := io.ReadAll(r.Body)
	err := json.Unmarshal(b, &body)
	rc.mu.Lock()
	status := http.StatusAccepted
	switch {
	case err != nil || r.Header.Get("Content-Type") != "application/json; charset=utf-8":
		status = http.StatusBadRequest
	case rc.fail > 0:
		rc.fail--
		rc.failedPosts++
		status = http.StatusServiceUnavailable
	default:
		rc.batches = append(rc.batches, body.Value)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
	select {
	case rc.changed <- struct{}{}:
	default:
	}
}

// values returns every accepted notification value in arrival order.
func (rc *receiver) values() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []map[string]any
	for _, b := range rc.batches {
		out = append(out, b...)
	}
	return out
}

// waitFor waits until cond holds (checked after every POST); it fails the
// test after 20 s, a deadline for a hung emulator, not a speed assertion.
func (rc *receiver) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-rc.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (rc *receiver) waitValues(t *testing.T, n int) []map[string]any {
	t.Helper()
	rc.waitFor(t, "notifications", func() bool { return len(rc.values()) >= n })
	return rc.values()
}

// graphDo sends a Graph request with an optional JSON body and decodes the
// JSON answer (nil for an empty body).
func graphDo(t *testing.T, s *Server, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.GraphBaseURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		return resp.StatusCode, nil
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

// control calls the control API and returns the status and raw body.
func control(t *testing.T, s *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.ControlURL+path, strings.NewReader(body))
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func graphErrorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// subBody is a valid create request: 2 hours with a lifecycle URL.
func subBody(clk *fakeClock, rc *receiver, resource string) map[string]any {
	return map[string]any{
		"changeType": "updated,deleted", "notificationUrl": rc.URL + "/notify?src=graph",
		"lifecycleNotificationUrl": rc.URL + "/lifecycle", "resource": resource,
		"expirationDateTime": clk.Now().Add(2 * time.Hour).Format(time.RFC3339Nano), "clientState": "s3cret-state",
	}
}
