package jobs

import (
	"context"
	"log/slog"
)

// quietShutdown is the handler of River's logger: it logs River's records
// as they are, except that an ERROR whose "err" is "context canceled" is
// logged at WARN. River's services stop by cancelling their contexts, and
// its job-insert notification (client.go, maybeNotifyInsertForQueues)
// logs the cancellation at ERROR when a periodic job's insert or the
// scheduler is under way at that moment — a clean stop, which must not
// read as a failure (docs/libraries.md §3, "Stopping").
type quietShutdown struct{ slog.Handler }

func (h quietShutdown) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && cancelled(r) {
		q := slog.NewRecord(r.Time, slog.LevelWarn, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool { q.AddAttrs(a); return true })
		r = q
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietShutdown) WithAttrs(as []slog.Attr) slog.Handler {
	return quietShutdown{h.Handler.WithAttrs(as)}
}

func (h quietShutdown) WithGroup(name string) slog.Handler {
	return quietShutdown{h.Handler.WithGroup(name)}
}

// cancelled says whether r's "err" (or "error") attribute is a context's
// cancellation.
func cancelled(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if (a.Key == "err" || a.Key == "error") && a.Value.String() == context.Canceled.Error() {
			found = true
			return false
		}
		return true
	})
	return found
}
