package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// upConn is a pooled upstream connection: the TCP socket, and what the
// write-and-wait round trip needs. A bodiless request on a connection that
// answered recently is sent from inside syscall.RawConn.Read, which then
// waits for the response through the runtime poller and reads it — write,
// wait for readable, read, as an event loop does. net.Conn's write-then-read
// runs its read right after the write, nearly always finds the response not
// there yet (EAGAIN) and only then parks: one wasted read syscall per
// request. The load generator does the same (bench/h1source.go).
//
// The write has to happen inside RawConn.Read: RawRead forgets readiness
// seen before it starts, so a response arriving between a separate write
// and the wait would never wake it. For the same reason a connection that
// sat idle, where the upstream may have closed or half-closed it without a
// new event to come, takes the ordinary path (warm).
//
// upConn embeds *net.TCPConn so everything else — deadlines, Close,
// ReadFrom, splice (splice.go unwraps it) — is the socket's own.
type upConn struct {
	*net.TCPConn
	rc syscall.RawConn

	// lastDone is when the last response on the connection was read whole
	// (the reader's clock); zero until then.
	lastDone time.Time

	// pending is the request head to send before the next read (nil: none).
	pending []byte

	// One call of fn, kept here so fn is one method value made at dial
	// rather than a closure per request.
	fn    func(fd uintptr) bool
	first bool
	p     []byte
	n     int
	err   error
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
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	u := &upConn{TCPConn: tc, rc: rc}
	u.fn = u.sendThenRead
	return u
}

// warm reports whether the connection completed a response within warmFor
// before now.
func (u *upConn) warm(now time.Time) bool {
	return !u.lastDone.IsZero() && now.Sub(u.lastDone) < warmFor
}

// sendWithRead queues head to go out with the next Read.
func (u *upConn) sendWithRead(head []byte) { u.pending = head }

// Read sends the pending request, if any, then waits for and reads
// response bytes; without one it is the socket's Read.
func (u *upConn) Read(p []byte) (int, error) {
	if u.pending == nil {
		return u.TCPConn.Read(p)
	}
	u.first, u.p, u.n, u.err = true, p, 0, nil
	err := u.rc.Read(u.fn)
	u.p = nil
	if u.pending != nil {
		// Not all of the head went out without blocking (a full send
		// buffer): finish it the ordinary way, then read.
		rest := u.pending
		u.pending = nil
		if err == nil && u.err == nil {
			if _, err := u.TCPConn.Write(rest); err != nil {
				return 0, err
			}
			return u.TCPConn.Read(p)
		}
	}
	if err != nil {
		return 0, err // a *net.OpError already: the deadline, or the connection closed
	}
	return u.n, u.err
}

// sendThenRead is the RawConn.Read callback. Its first call writes the
// request and asks to wait for readability; later calls read. It returns
// true when done.
func (u *upConn) sendThenRead(fd uintptr) bool {
	if u.first {
		u.first = false
		return u.writePending(int(fd))
	}
	for {
		n, err := syscall.Read(int(fd), u.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // a stale readiness: wait again
		case err != nil:
			u.err = u.opError("read", err)
		case n == 0:
			u.err = io.EOF
		default:
			u.n = n
		}
		return true
	}
}

// writePending writes the request without blocking. It returns false to
// wait for the response, true to leave RawRead with u.err set or with the
// unwritten rest still pending.
func (u *upConn) writePending(fd int) bool {
	for len(u.pending) > 0 {
		n, err := syscall.Write(fd, u.pending)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			u.pending = nil
			u.err = u.opError("write", err)
			return true
		}
		u.pending = u.pending[n:]
	}
	u.pending = nil
	return false
}

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
