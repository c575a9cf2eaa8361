package jobs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// TestQuietShutdown: River's ERROR records of a cancelled context (its
// services stopping) are logged at WARN; every other record as it is.
func TestQuietShutdown(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(quietShutdown{slog.NewJSONHandler(&buf, nil)}).With("client", "c1")
	log.Error("Client: Failed to send job insert notification", "queues", "default", "err", "context canceled")
	log.Error("JobScheduler: Error scheduling jobs", "error", "context canceled")
	log.Error("Client: Failed to send job insert notification", "err", "connection refused")
	log.Warn("something else", "err", "context canceled")
	log.Info("River client stopped")
	var got []string
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var rec struct {
			Level, Msg, Client, Queues string
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if rec.Client != "c1" {
			t.Errorf("record %q lost the logger's attributes", rec.Msg)
		}
		got = append(got, rec.Level)
	}
	want := []string{"WARN", "WARN", "ERROR", "WARN", "INFO"}
	if len(got) != len(want) {
		t.Fatalf("levels %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("levels %v, want %v", got, want)
			break
		}
	}
}
