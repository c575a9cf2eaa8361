// Package retry holds what the Entra and Graph clients share when a server
// asks them to wait: reading Retry-After and waiting without outliving the
// context. It imports only the standard library.
package retry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// After reads a Retry-After header: seconds, possibly fractional (protocol
// §5.6 shows "2.128"), or an HTTP date. It returns 0 when the header is
// absent or unreadable. The result is rounded up, so a request sent at the
// end of the wait is never a hair early.
func After(header string, now time.Time) time.Duration {
	v := strings.TrimSpace(header)
	if v == "" {
		return 0
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f <= 0 {
			return 0
		}
		return time.Duration(f*float64(time.Second)) + time.Millisecond
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now) + time.Second // HTTP dates have whole seconds
	}
	return 0
}

// Sleep waits d or until ctx ends, whichever comes first, and returns the
// context's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
