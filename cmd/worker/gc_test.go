package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, gcMaxPercent},
		{256 << 10, 192 << 10, 1600},    // a worker with nothing to do: the cap (Go's minimum heap 64 MiB)
		{6 << 20, 2 << 20, 800},         // a small fleet: 64 MiB of headroom
		{1 << 20, 7 << 20, 800},         // roots count: the goal is 64 MiB more, not 448
		{120 << 20, 8 << 20, gcPercent}, // the two agree
		{235 << 20, 8 << 20, gcPercent}, // 100,000 tenants: half the heap
		{gcHeadroom * 2, 0, gcPercent},  // above the crossing point
	} {
		if got := gcPercentFor(c.live, c.roots); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.roots>>20, got, c.want)
		}
	}
}

// TestTuneGC: after a collection the GOGC in force is the one for the
// live heap, here small, so the headroom's (the test binary's own live
// heap is a few MiB).
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuneGC()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs the tuning
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p > gcPercent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after collections with a small live heap, want more than %d", p, gcPercent)
		}
	}
}
