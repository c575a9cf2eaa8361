// Package httpserver builds the http.Server of every tenantsync listener:
// cmd/server, the worker's admin listener and the emulator. Its timeouts
// keep a slow or hostile client from holding a connection and a goroutine
// for as long as it likes. It imports the standard library only.
package httpserver

import (
	"net/http"
	"time"
)

// Timeouts bound each phase of a connection; a zero field takes its default.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers; default 5 s.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included: the body
	// deadline. Default 15 s.
	Read time.Duration
	// Write bounds the time from the end of the request headers to the end
	// of the response, so it must exceed the handlers' own time limit
	// (cmd/server's request timeout is 10 s). Default 30 s.
	Write time.Duration
	// Idle bounds a kept-alive connection waiting for its next request;
	// default 60 s.
	Idle time.Duration
}

// Defaults are the timeouts a zero Timeouts field takes.
var Defaults = Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second}

// MaxHeaderBytes bounds the request line and headers: a session cookie and
// an OAuth callback's query fit many times over.
const MaxHeaderBytes = 64 << 10

// New returns a server for h with t's timeouts (Defaults where zero).
func New(h http.Handler, t Timeouts) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(t.ReadHeader, Defaults.ReadHeader),
		ReadTimeout:       or(t.Read, Defaults.Read),
		WriteTimeout:      or(t.Write, Defaults.Write),
		IdleTimeout:       or(t.Idle, Defaults.Idle),
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
