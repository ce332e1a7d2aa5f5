package proxy

import (
	"net"
	"os"
	"time"

	"github.com/cellgate/cellgate/internal/rawio"
)

// upConn is a pooled upstream connection: the TCP socket, and what the
// write-and-wait round trip needs. A bodiless request on a connection that
// answered recently is sent from inside syscall.RawConn.Read, which then
// waits for the response through the runtime poller and reads it — write,
// wait for readable, read, as an event loop does (internal/rawio says why;
// the load generator does the same, bench/h1client.go).
//
// Only a new readiness wakes the combined wait, so a connection that sat
// idle, where the upstream may have closed or half-closed it without a new
// event to come, takes the ordinary path (warm).
//
// upConn embeds *net.TCPConn so everything else — deadlines, Close,
// ReadFrom, splice (splice.go unwraps it) — is the socket's own.
type upConn struct {
	*net.TCPConn
	ww rawio.WriteWait

	// lastDone is when the last response on the connection was read whole
	// (the reader's clock); zero until then.
	lastDone time.Time
}

// warmFor is how recently a connection must have completed a response to
// be sent on with write-and-wait. Upstreams close idle keep-alive
// connections after seconds (nginx 60 s, Go 90 s, HAProxy 10 s by default)
// and announce any other close in the response.
const warmFor = time.Second

// newUpConn wraps c when it is a plain TCP socket; other connections are
// returned as they are.
func newUpConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	u := &upConn{TCPConn: tc}
	if !u.ww.Reset(tc) {
		return c
	}
	u.ww.OpError = u.opError // one method value per connection, made at dial
	return u
}

// warm reports whether the connection completed a response within warmFor
// before now.
func (u *upConn) warm(now time.Time) bool {
	return !u.lastDone.IsZero() && now.Sub(u.lastDone) < warmFor
}

// reused reports whether the connection has carried a response before:
// it came from the keep-alive pool, where the upstream may have closed it
// while it sat idle (forward's stale-connection retry).
func (u *upConn) reused() bool { return !u.lastDone.IsZero() }

// sendWithRead queues head to go out with the next Read.
func (u *upConn) sendWithRead(head []byte) {
	_ = u.ww.SendWithRead(head) // only queues: newUpConn wraps raw sockets alone
}

// Read sends the pending request, if any, then waits for and reads
// response bytes; without one it is the socket's Read.
func (u *upConn) Read(p []byte) (int, error) { return u.ww.Read(p) }

// opError wraps a syscall error as net.Conn's methods do, so errors.Is
// finds ECONNRESET, EPIPE and the like (connLost, classify).
func (u *upConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: u.LocalAddr(), Addr: u.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

// tcpConn returns the TCP socket under an upstream connection, or nil.
func tcpConn(c net.Conn) *net.TCPConn {
	switch t := c.(type) {
	case *net.TCPConn:
		return t
	case *upConn:
		return t.TCPConn
	}
	return nil
}
