package config

import (
	"strings"
	"testing"
)

// TestWebhookAllowPrivate: off unless set, read by both processes, and a
// value that is not a boolean is a configuration problem.
func TestWebhookAllowPrivate(t *testing.T) {
	t.Parallel()
	s, err := LoadServer(envOf(base()))
	if err != nil || s.WebhookAllowPrivate {
		t.Errorf("server default: %v, %v; want false", s.WebhookAllowPrivate, err)
	}
	w, err := LoadWorker(envOf(base()))
	if err != nil || w.WebhookAllowPrivate {
		t.Errorf("worker default: %v, %v; want false", w.WebhookAllowPrivate, err)
	}
	on := with(base(), "WEBHOOK_ALLOW_PRIVATE", "true")
	if s, err := LoadServer(envOf(on)); err != nil || !s.WebhookAllowPrivate {
		t.Errorf("server with true: %v, %v", s.WebhookAllowPrivate, err)
	}
	if w, err := LoadWorker(envOf(on)); err != nil || !w.WebhookAllowPrivate {
		t.Errorf("worker with true: %v, %v", w.WebhookAllowPrivate, err)
	}
	if _, err := LoadWorker(envOf(with(base(), "WEBHOOK_ALLOW_PRIVATE", "sometimes"))); err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOW_PRIVATE") {
		t.Errorf("a non-boolean value: %v, want a problem naming WEBHOOK_ALLOW_PRIVATE", err)
	}
}
