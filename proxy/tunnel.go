package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// closeLinger is how long a tunnel that is ending waits for the rest of the
// closing handshake: after the proxy sends a close frame, for the client's
// answering close frame to pass upstream and the client to hang up; after
// one side hung up, for the other to finish. RFC 6455 §7.1.1 leaves the TCP
// close to the server, which here is the proxy, so it is bounded.
const closeLinger = 2 * time.Second

// tunnelBuf is the copy buffer of each direction. WebSocket messages are
// mostly small and tunnels mostly idle, so memory per open tunnel (two
// buffers) matters more than the copy size: 10 000 tunnels hold 160 MiB.
const tunnelBuf = 8 << 10

// Close reasons the proxy puts into its close frames (ASCII, ≤ 123 bytes).
const (
	reasonRestart = "cell released: reconnect"
	reasonDrain   = "proxy draining: reconnect"
	reasonIdle    = "idle timeout"
)

// tunnel is one open WebSocket: the hijacked client connection and a
// dedicated upstream connection, copied both ways by two pumps. The
// upstream→client pump tracks frame boundaries so the proxy can close the
// tunnel with a close frame of its own between two frames (shut); the
// other direction is copied blind.
//
// Deadlines do all the waking: each pump reads with a deadline of the
// tunnel's idle limit or its end (lingerUntil), whichever is sooner, and
// re-reads them on every timeout, so a shut or an end only needs to set a
// past deadline on both connections.
type tunnel struct {
	set  *tunnelSet
	cell string
	ep   *endpoint
	up   net.Conn
	// head is the 101 response for the client, written by serve before any
	// tunnelled byte; early holds upstream bytes read together with the
	// upstream's 101 (frames the upstream sent at once).
	head  []byte
	early []byte
	// writeTimeout and upWriteTimeout bound one write to each side (zero:
	// the idle timeout, if any).
	writeTimeout, upWriteTimeout time.Duration

	frames frameTracker // upstream→client boundaries; owned by pumpDown

	last        atomic.Int64               // UnixNano of the last byte read from either side
	lingerUntil atomic.Int64               // UnixNano after which the tunnel is cut; 0: not ending
	closing     atomic.Pointer[closeFrame] // the close frame to send the client; nil: none requested

	// mu guards client, which serve sets once the connection is hijacked;
	// a shut may come before that.
	mu     sync.Mutex
	client net.Conn
}

// closeFrame is a close frame the proxy sends: status code and reason.
type closeFrame struct {
	code uint16
	why  string
}

// shut asks the tunnel to close with a close frame (code, why) at the next
// frame boundary of the upstream→client stream, then to end within
// closeLinger. The first request wins.
func (t *tunnel) shut(code uint16, why string) {
	if t.closing.CompareAndSwap(nil, &closeFrame{code, why}) {
		t.endBy(time.Now().Add(closeLinger))
	}
}

// endBy makes the tunnel end no later than at: it wakes both pumps so they
// take the new read deadline, and bounds writes in progress by at.
func (t *tunnel) endBy(at time.Time) {
	ns := at.UnixNano()
	for {
		cur := t.lingerUntil.Load()
		if cur != 0 && cur <= ns {
			break
		}
		if t.lingerUntil.CompareAndSwap(cur, ns) {
			break
		}
	}
	past, end := time.Unix(1, 0), time.Unix(0, t.lingerUntil.Load())
	_ = t.up.SetReadDeadline(past)
	_ = t.up.SetWriteDeadline(end)
	t.mu.Lock()
	if t.client != nil {
		_ = t.client.SetReadDeadline(past)
		_ = t.client.SetWriteDeadline(end)
	}
	t.mu.Unlock()
}

// deadline is the read deadline both pumps use: the end, if the tunnel is
// ending, or the idle limit; zero (none) when neither applies.
func (t *tunnel) deadline() time.Time {
	end := t.lingerUntil.Load()
	if idle := t.set.idle.Load(); idle > 0 {
		if at := t.last.Load() + idle; end == 0 || at < end {
			end = at
		}
	}
	if end == 0 {
		return time.Time{}
	}
	return time.Unix(0, end)
}

// expired handles a read timeout: it reports whether the pump must stop
// (the tunnel's end has passed). A tunnel idle for the idle timeout is
// shut with 1001 instead, which gives it closeLinger to say goodbye.
func (t *tunnel) expired() bool {
	now := time.Now().UnixNano()
	if end := t.lingerUntil.Load(); end != 0 && now >= end {
		return true
	}
	if idle := t.set.idle.Load(); idle > 0 && now-t.last.Load() >= idle {
		t.shut(closeGoingAway, reasonIdle)
	}
	return false
}

// serve runs the tunnel on the hijacked client connection c: it writes the
// 101 response, then pumps both ways until both pumps stop. fasthttp closes
// c when serve returns.
func (t *tunnel) serve(c net.Conn) {
	t.mu.Lock()
	t.client = c
	t.mu.Unlock()
	defer t.end()
	t.last.Store(time.Now().UnixNano())
	if !t.write(c, t.head, t.writeTimeout) {
		return
	}
	up := make(chan struct{})
	go t.pumpUp(up)
	t.pumpDown()
	// The upstream side is done. After a close frame of ours the client
	// gets closeLinger to answer it; otherwise the upstream hung up and
	// the client follows at once.
	if t.closing.Load() == nil {
		t.endBy(time.Now())
	}
	<-up
}

// end releases the tunnel's upstream side and unregisters it.
func (t *tunnel) end() {
	t.up.Close()
	t.ep.outstanding.Add(-1)
	t.set.remove(t)
}

// pumpDown copies upstream → client, tracking frame boundaries, until the
// upstream hangs up, a write fails, the tunnel's end passes, or a requested
// close frame has been sent.
func (t *tunnel) pumpDown() {
	if !t.down(t.early) {
		return
	}
	t.early = nil
	buf := make([]byte, tunnelBuf)
	for {
		_ = t.up.SetReadDeadline(t.deadline())
		if !t.down(nil) { // a close requested before the deadline was set
			return
		}
		n, err := t.up.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if !t.down(buf[:n]) {
				return
			}
		}
		if err != nil && !(isTimeout(err) && !t.expired()) {
			return
		}
	}
}

// down forwards upstream bytes b to the client and reports whether to go
// on. Once a close is requested it forwards only up to the end of the
// current frame, then sends the close frame and stops: no data frame may
// follow a close frame (RFC 6455 §5.5.1), and the rest of the upstream's
// stream is dropped with the upstream connection.
func (t *tunnel) down(b []byte) bool {
	for {
		cf := t.closing.Load()
		if cf != nil && t.frames.atBoundary() {
			frame := appendCloseFrame(make([]byte, 0, 2+125), cf.code, cf.why)
			t.write(t.client, frame, t.writeTimeout)
			return false
		}
		if cf != nil && t.frames.broken {
			return false // boundaries unknown: a TCP close is all that is left
		}
		if len(b) == 0 {
			return true
		}
		n, _ := t.frames.advance(b, cf != nil)
		if !t.write(t.client, b[:n], t.writeTimeout) {
			return false
		}
		b = b[n:]
	}
}

// pumpUp copies client → upstream until the client hangs up, a write
// fails or the tunnel's end passes, then closes done. A client that hangs
// up cleanly has its half-close passed on, and the upstream gets
// closeLinger to finish.
func (t *tunnel) pumpUp(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, tunnelBuf)
	for {
		_ = t.client.SetReadDeadline(t.deadline())
		n, err := t.client.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if !t.write(t.up, buf[:n], t.upWriteTimeout) {
				t.endBy(time.Now())
				return
			}
		}
		switch {
		case err == nil:
		case isTimeout(err) && !t.expired():
		case errors.Is(err, io.EOF):
			if cw, ok := t.up.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			t.endBy(time.Now().Add(closeLinger))
			return
		default:
			t.endBy(time.Now())
			return
		}
	}
}

// write writes b to c within timeout (or the idle timeout when zero), and
// never past the tunnel's end, and reports success.
func (t *tunnel) write(c net.Conn, b []byte, timeout time.Duration) bool {
	if len(b) == 0 {
		return true
	}
	if timeout <= 0 {
		timeout = time.Duration(t.set.idle.Load())
	}
	var at int64
	if timeout > 0 {
		at = time.Now().Add(timeout).UnixNano()
	}
	if end := t.lingerUntil.Load(); end != 0 && (at == 0 || end < at) {
		at = end
	}
	if at != 0 {
		_ = c.SetWriteDeadline(time.Unix(0, at))
	} else {
		_ = c.SetWriteDeadline(time.Time{})
	}
	_, err := c.Write(b)
	return err == nil
}
