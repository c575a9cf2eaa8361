package fleettest

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// pgProxy relays a worker's Postgres connections and counts its round trips:
// the frontend messages after which the client waits for the server — Sync
// (the end of an extended-protocol query or of a pipelined batch) and Query
// (a simple query, which is also how COPY starts). A batch of ten statements
// sent as one pipeline counts once, as it costs one round trip.
type pgProxy struct {
	ln        net.Listener
	target    string
	roundTrip atomic.Int64
	wg        sync.WaitGroup
}

func startPGProxy(t testing.TB, dbURL string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: u.Host}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *pgProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(c, s); c.Close() }() //nolint:errcheck // either side closing ends the relay
		go func() { defer p.wg.Done(); p.frontend(c, s); s.Close() }()
	}
}

// frontend copies client→server messages, counting Sync ('S') and Query
// ('Q'). The first message (and a second one after an SSL or GSS request,
// which the server refuses with one byte) carries no type byte.
func (p *pgProxy) frontend(c, s net.Conn) {
	untyped := true
	hdr := make([]byte, 5)
	for {
		n := 5
		if untyped {
			n = 4
		}
		if _, err := io.ReadFull(c, hdr[:n]); err != nil {
			return
		}
		var typ byte
		size := binary.BigEndian.Uint32(hdr[:4])
		if !untyped {
			typ, size = hdr[0], binary.BigEndian.Uint32(hdr[1:5])
		}
		if size < 4 {
			return
		}
		body := make([]byte, size-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if untyped {
			// 80877103 = SSLRequest, 80877104 = GSSENCRequest: the startup
			// message follows, still untyped.
			code := uint32(0)
			if len(body) >= 4 {
				code = binary.BigEndian.Uint32(body[:4])
			}
			untyped = code == 80877103 || code == 80877104
		} else if typ == 'S' || typ == 'Q' {
			p.roundTrip.Add(1)
		}
		if _, err := s.Write(append(hdr[:n:n], body...)); err != nil {
			return
		}
	}
}
