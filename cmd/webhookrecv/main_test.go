package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tenantsync/tenantsync/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestRun: a delivery signed with the secret is printed once however often
// it comes; one signed otherwise is refused with 401 and not printed.
func TestRun(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string {
			if k == "WEBHOOK_SECRET" {
				return secret
			}
			return ""
		}, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatal("no URL line")
	}
	url := strings.TrimSpace(lines.Text())
	printed := make(chan string, 10)
	go func() {
		for lines.Scan() {
			printed <- lines.Text()
		}
		close(printed)
	}()

	send := func(secret, id, body string) int {
		t.Helper()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		sig, err := wh.Sign(id, now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
		req.Header.Set("webhook-signature", sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	body := `{"id":"e1","type":"user.created","tenant_id":"t1","occurred_at":"2026-01-01T00:00:00Z","data":{"n":1}}`
	if code := send(secret, "e1", body); code != http.StatusNoContent {
		t.Errorf("signed delivery: %d", code)
	}
	if code := send(secret, "e1", body); code != http.StatusNoContent {
		t.Errorf("repeated delivery: %d", code)
	}
	if code := send("whsec_"+strings.Repeat("A", 32), "e2", body); code != http.StatusUnauthorized {
		t.Errorf("delivery signed with another secret: %d, want 401", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var got []string
	for l := range printed {
		got = append(got, l)
	}
	if len(got) != 1 || !strings.Contains(got[0], "user.created tenant=t1 id=e1") {
		t.Fatalf("printed %q, want the event once", got)
	}
}

func TestRunNeedsSecret(t *testing.T) {
	if err := run(context.Background(), nil, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("started without a secret")
	}
}
