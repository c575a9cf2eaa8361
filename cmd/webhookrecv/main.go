// Command webhookrecv is a small webhook receiver for demos and for trying
// an endpoint out: it verifies each delivery's Standard Webhooks signature
// with the reference library, answers 401 to one that does not verify,
// drops a webhook-id it has already processed (deliveries are at least
// once), and prints one line per new event.
//
//	webhookrecv -secret whsec_… [-addr 127.0.0.1:8090]
//
// The secret may also come from WEBHOOK_SECRET (a flag shows in the process
// list). The first line on stdout is the URL to register as the endpoint,
// with the server and worker running with WEBHOOK_ALLOW_PRIVATE=true.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webhookrecv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("webhookrecv", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	secret := fs.String("secret", "", "the endpoint's whsec_ signing secret (or WEBHOOK_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		*secret = getenv("WEBHOOK_SECRET")
	}
	if *secret == "" {
		return errors.New("a signing secret is required: -secret whsec_… or WEBHOOK_SECRET")
	}
	wh, err := standardwebhooks.NewWebhook(*secret)
	if err != nil {
		return errors.New("the secret is not whsec_ and base64")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	r := &receiver{verifier: wh, out: stdout, seen: map[string]bool{}}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

// receiver verifies, deduplicates and prints deliveries.
type receiver struct {
	verifier *standardwebhooks.Webhook
	mu       sync.Mutex
	out      io.Writer
	seen     map[string]bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := r.verifier.Verify(body, req.Header); err != nil {
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type       string          `json:"type"`
		TenantID   string          `json:"tenant_id"`
		OccurredAt string          `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[id] {
		r.seen[id] = true
		fmt.Fprintf(r.out, "%s %s tenant=%s id=%s data=%s\n", ev.OccurredAt, ev.Type, ev.TenantID, id, ev.Data)
	}
	w.WriteHeader(http.StatusNoContent)
}
