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

// frontend relays client→server bytes as they come, one write per read, so
// the worker's pipelined batches reach Postgres as it sent them and the
// relay costs little (copying each message with its own write cost the
// benchmark machine's CPU and Postgres one read per message); messages are
// followed across reads by their framing (feScanner) to count round trips.
func (p *pgProxy) frontend(c, s net.Conn) {
	buf := make([]byte, 64<<10)
	sc := feScanner{untyped: true, count: func() { p.roundTrip.Add(1) }}
	for {
		n, err := c.Read(buf)
		if n > 0 {
			sc.scan(buf[:n])
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// feScanner follows the frontend's message framing and calls count at
// each Sync ('S') and Query ('Q'). A typed message has a 5-byte header
// (type, length); the first message (and a second one after an SSL or GSS
// request, which the server refuses with one byte) has no type byte: its
// header is read as 8 bytes, the length and the request code.
type feScanner struct {
	hdr     [8]byte
	hn      int // header bytes gathered
	skip    int // body bytes of the current message still to pass
	untyped bool
	count   func()
}

func (f *feScanner) scan(b []byte) {
	for len(b) > 0 {
		if f.skip > 0 {
			k := min(f.skip, len(b))
			f.skip -= k
			b = b[k:]
			continue
		}
		need := 5
		if f.untyped {
			need = 8
		}
		k := copy(f.hdr[f.hn:need], b)
		f.hn += k
		b = b[k:]
		if f.hn < need {
			return
		}
		f.hn = 0
		if f.untyped {
			// 80877103 = SSLRequest, 80877104 = GSSENCRequest: the startup
			// message follows, still untyped.
			code := binary.BigEndian.Uint32(f.hdr[4:8])
			f.skip = max(0, int(binary.BigEndian.Uint32(f.hdr[:4]))-8)
			f.untyped = code == 80877103 || code == 80877104
			continue
		}
		f.skip = max(0, int(binary.BigEndian.Uint32(f.hdr[1:5]))-4)
		if f.hdr[0] == 'S' || f.hdr[0] == 'Q' {
			f.count()
		}
	}
}

// TestFEScannerCountsAcrossReads: the round-trip count does not depend on
// how the client's bytes are split into reads.
func TestFEScannerCountsAcrossReads(t *testing.T) {
	msg := func(typ byte, body string) []byte {
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
		return append(b, body...)
	}
	untyped := func(code uint32, rest string) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, uint32(8+len(rest)))
		binary.BigEndian.PutUint32(b[4:], code)
		return append(b, rest...)
	}
	var stream []byte
	stream = append(stream, untyped(80877103, "")...)                       // SSLRequest
	stream = append(stream, untyped(196608, "user\x00postgres\x00\x00")...) // StartupMessage, 3.0
	stream = append(stream, msg('Q', "SELECT 'S', 'Q'\x00")...)             // 1
	stream = append(stream, msg('P', "\x00SELECT 1\x00\x00\x00")...)
	stream = append(stream, msg('B', "\x00\x00\x00\x00\x00\x00\x00\x00")...)
	stream = append(stream, msg('E', "\x00\x00\x00\x00\x00")...)
	stream = append(stream, msg('S', "")...) // 2
	stream = append(stream, msg('d', "SSSSQQQQ")...)
	stream = append(stream, msg('c', "")...)
	stream = append(stream, msg('S', "")...) // 3
	for size := 1; size <= len(stream); size++ {
		n := 0
		sc := feScanner{untyped: true, count: func() { n++ }}
		for lo := 0; lo < len(stream); lo += size {
			sc.scan(stream[lo:min(lo+size, len(stream))])
		}
		if n != 3 {
			t.Fatalf("reads of %d bytes: %d round trips counted, want 3", size, n)
		}
	}
}
