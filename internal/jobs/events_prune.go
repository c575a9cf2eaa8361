package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/queue"
)

type eventsPruneWorker struct {
	river.WorkerDefaults[queue.EventsPruneArgs]
	d *Deps
}

// Work deletes the change-feed events older than EventsRetention, oldest
// first, EventsPruneBatch per transaction (each moving the retention
// horizon with it), until the old prefix is gone or the job's time is up;
// the next run goes on (docs/events.md).
func (w *eventsPruneWorker) Work(ctx context.Context, _ *river.Job[queue.EventsPruneArgs]) error {
	d := w.d
	cutoff := d.Now().Add(-d.EventsRetention)
	total := 0
	for ctx.Err() == nil {
		n, err := d.Store.EventsPrune(ctx, cutoff, d.EventsPruneBatch)
		if err != nil {
			return err
		}
		total += n
		if n < d.EventsPruneBatch {
			break
		}
	}
	if total > 0 {
		d.log(ctx).Info("old change-feed events deleted", "count", total, "before", cutoff.UTC().Format(time.RFC3339))
	}
	return ctx.Err()
}
