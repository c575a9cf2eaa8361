package webapp

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// The chart's text summary reads right for one run ("took", not "each
// took … between") and for several.
func TestSyncChartSummary(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	run := func(i int, took time.Duration, changes int, outcome domain.SyncOutcome) domain.SyncRun {
		s := start.Add(time.Duration(i) * time.Hour)
		f := s.Add(took)
		return domain.SyncRun{Kind: domain.SyncFull, StartedAt: s, FinishedAt: &f, Upserts: changes, Outcome: outcome}
	}
	for _, tt := range []struct {
		name string
		runs []domain.SyncRun // newest first, as SyncRunList returns them
		want string
	}{
		{"one run", []domain.SyncRun{run(0, 22*time.Millisecond, 50, domain.SyncSucceeded)},
			"The one finished sync run, at 30 Nov 09:15 UTC, took 22 ms, wrote 50 changes and succeeded."},
		{"one failed run", []domain.SyncRun{run(0, 3*time.Second, 0, domain.SyncFailed)},
			"The one finished sync run, at 30 Nov 09:15 UTC, took 3.0 s, wrote 0 changes and failed."},
		{"two runs", []domain.SyncRun{run(1, 40*time.Millisecond, 2, domain.SyncFailed), run(0, 22*time.Millisecond, 50, domain.SyncSucceeded)},
			"The last 2 finished sync runs, from 30 Nov 09:15 to 30 Nov 10:15 UTC: each took between 22 ms and 40 ms and wrote between 2 and 50 changes; 1 failed."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := newSyncChart(tt.runs).Summary
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("summary\n got %q\nwant %q…", got, tt.want)
			}
		})
	}
}
