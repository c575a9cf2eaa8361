package entraemu

import (
	"math"
	"time"
)

// bucket is a resource-unit token bucket for one application + tenant pair
// (protocol §5.7). blockedUntil is the end of the last 429's Retry-After: a
// request arriving earlier is throttled again. announced is the latest end
// of any Retry-After sent (429 or 503): a request arriving earlier is an
// early retry, whatever it is answered.
type bucket struct {
	tokens       float64
	last         time.Time
	blockedUntil time.Time
	announced    time.Time
}

// quota is the resource units per 10 s of an app+tenant pair by tenant
// size: S (<50 users) 3,500, M (50–500) 5,000, L (>500) 8,000 (protocol §5.7).
func quota(users int) float64 {
	switch {
	case users < 50:
		return 3500
	case users <= 500:
		return 5000
	}
	return 8000
}

type throttleResult struct {
	ok         bool
	retryAfter time.Duration // whole seconds
	limitPct   float64       // used share of the bucket after this request
}

// early reports whether a request for key arrives inside a Retry-After
// window announced to it. It is asked before any fault is injected, so an
// early request is counted even when a fault then answers it.
func (e *Emulator) early(key string) bool {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	b := e.throttle[key]
	return b != nil && e.now().Before(b.announced)
}

// take charges cost resource units; on shortage it announces the honest
// wait after which the bucket holds enough units.
func (e *Emulator) take(key string, users int, cost float64) throttleResult {
	capacity := quota(users) * e.throttleScale
	rate := capacity / 10 // units per second
	cost = min(cost, capacity)
	now := e.now()
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	b := e.throttle[key]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		e.throttle[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(capacity, b.tokens+el*rate)
		b.last = now
	}
	if now.Before(b.blockedUntil) {
		return throttleResult{retryAfter: ceilSeconds(b.blockedUntil.Sub(now))}
	}
	if b.tokens+1e-9 >= cost { // tolerate float rounding of scaled quotas
		b.tokens -= cost
		return throttleResult{ok: true, limitPct: 1 - b.tokens/capacity}
	}
	wait := ceilSeconds(time.Duration((cost - b.tokens) / rate * float64(time.Second)))
	b.blockedUntil = now.Add(wait)
	b.announced = later(b.announced, b.blockedUntil)
	return throttleResult{retryAfter: wait}
}

// block records an injected 429 (throttle) or a 503 with Retry-After (not
// throttle: the service is down, not the quota spent), so that early
// retries are detected after either.
func (e *Emulator) block(key string, d time.Duration, throttle bool) {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	b := e.throttle[key]
	if b == nil {
		b = &bucket{tokens: math.Inf(1), last: e.now()}
		e.throttle[key] = b
	}
	until := e.now().Add(d)
	if throttle {
		b.blockedUntil = until
	}
	b.announced = later(b.announced, until)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func ceilSeconds(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	return time.Duration(max(s, 1)) * time.Second
}
