package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// The worker's collector (issue 13). Most of a large fleet's live heap is
// its tokens, one string of about 2 KB per tenant, held for the token's
// lifetime (internal/entra): 235 MiB live at 100,000 tenants. Go's default,
// GOGC=100, lets the heap grow to twice the live heap before it collects
// (a peak of 510 MiB there); gcPercent, 50, stops it at about one and a
// half times, and strings hold no pointers for the collector to follow, so
// collecting more often costs little there.
//
// A small fleet's live heap is a few MiB, though, and GOGC=50 alone then
// collects after every 2–4 MiB allocated: a fifth of the worker's CPU in a
// first sync of 3,000 tenants went to the collector. So the heap may also
// always grow by gcHeadroom before a collection: after each cycle the
// percentage is set to the larger of gcPercent and the one that lets the
// heap grow by gcHeadroom. Measured with make bench-fleet (3,000 × 50),
// alternating with GOGC=50 alone, two runs each: worker CPU per tenant of
// the first sync 1.81, 1.90 → 1.34, 1.41 ms, 283.5, 285.3 → 312.5, 308.3
// tenants/s, peak heap 16 → 58–70 MiB. An environment that sets GOGC
// keeps it, and GOMEMLIMIT caps the heap either way.
//
// Go's minimum heap goal also scales with GOGC (4 MiB × GOGC/100: the
// runtime's heapMinimum), so the percentage stops at gcMaxPercent, where
// that minimum is the headroom; above it a small live heap would not be
// collected before growing by hundreds of MiB.
const (
	gcPercent    = 50
	gcHeadroom   = 64 << 20
	gcMaxPercent = gcHeadroom / (4 << 20) * 100
)

// gcPercentFor is the GOGC for a live heap of live bytes and roots
// (goroutine stacks and globals) of roots bytes: Go's heap goal is the live
// heap plus GOGC percent of the live heap and the roots together.
func gcPercentFor(live, roots uint64) int {
	if live+roots == 0 {
		return gcMaxPercent
	}
	return int(min(gcMaxPercent, max(gcPercent, gcHeadroom*100/(live+roots))))
}

// tuneGC sets the GOGC for the current live heap, and again after every
// collection (a finalizer runs after the cycle that found its object
// unreachable, and arms the next).
func tuneGC() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	current := debug.SetGCPercent(gcPercent)
	var arm func()
	arm = func() {
		type sentinel struct{ _ *byte } // not a tiny allocation, whose finalizer may never run
		runtime.SetFinalizer(new(sentinel), func(*sentinel) {
			metrics.Read(sample)
			p := gcPercentFor(sample[0].Value.Uint64(), sample[1].Value.Uint64()+sample[2].Value.Uint64())
			if p != current {
				debug.SetGCPercent(p)
				current = p
			}
			arm()
		})
	}
	arm()
}
