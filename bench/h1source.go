package bench

import (
	"io"
	"net"
	"syscall"
)

// h1Source is the io.Reader under an h1Conn's bufio.Reader. It sends the
// request and waits for the response in one pass through the runtime
// poller, as an event loop does (write, wait for readable, read), instead of
// net.Conn's write-then-read, whose read runs right after the write, nearly
// always finds the response not there yet (EAGAIN), and only then parks:
// one wasted syscall per request, about a tenth of the generator's CPU.
//
// The write has to happen inside syscall.RawConn.Read: RawRead forgets any
// readiness seen before it starts, so a response that arrived between a
// separate write and the wait would never wake it.
type h1Source struct {
	conn    net.Conn
	rc      syscall.RawConn // nil when conn has no file descriptor
	pending []byte          // the request to send before the next read
	fn      func(fd uintptr) bool

	// State of one call of fn, kept here so that fn is one method value
	// allocated once rather than a closure per read.
	first bool
	p     []byte
	n     int
	err   error
}

func newH1Source() *h1Source {
	s := &h1Source{}
	s.fn = s.sendThenRead
	return s
}

// reset switches the source to a new connection (nil: none).
func (s *h1Source) reset(conn net.Conn) {
	s.conn, s.rc, s.pending = conn, nil, nil
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
		}
	}
}

// sendWithRead queues req to go out with the next Read; without a raw
// connection it writes at once. The caller must know that no response byte
// or close is waiting unread on the connection: in the combined wait only a
// new readiness wakes the read, so one that came before it would be missed
// until the next event or the request's timeout. The window is the few
// microseconds between reading a response and sending the next request
// back to back; h1Conn uses the ordinary path otherwise.
func (s *h1Source) sendWithRead(req []byte) error {
	if s.rc == nil {
		_, err := s.conn.Write(req)
		return err
	}
	s.pending = req
	return nil
}

// Read implements io.Reader: it sends the pending request, if any, then
// waits for and reads response bytes.
func (s *h1Source) Read(p []byte) (int, error) {
	if s.pending == nil {
		return s.conn.Read(p)
	}
	s.first, s.p, s.n, s.err = true, p, 0, nil
	err := s.rc.Read(s.fn)
	s.p = nil
	if s.pending != nil {
		// Not all of the request went out without blocking (a full send
		// buffer): finish it the ordinary way, then read.
		rest := s.pending
		s.pending = nil
		if err == nil && s.err == nil {
			if _, err := s.conn.Write(rest); err != nil {
				return 0, err
			}
			return s.conn.Read(p)
		}
	}
	if err != nil {
		return 0, err
	}
	return s.n, s.err
}

// sendThenRead is the RawConn.Read callback. Its first call writes the
// request and asks to wait for readability; later calls read. It returns
// true when done.
func (s *h1Source) sendThenRead(fd uintptr) bool {
	if s.first {
		s.first = false
		return s.writePending(int(fd))
	}
	for {
		n, err := syscall.Read(int(fd), s.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // a stale readiness: wait again
		case err != nil:
			s.err = &net.OpError{Op: "read", Net: "tcp", Err: err}
		case n == 0:
			s.err = io.EOF
		default:
			s.n = n
		}
		return true
	}
}

// writePending writes the request without blocking. It returns false to
// wait for the response, true to leave RawRead with s.err set or with the
// unwritten rest still pending.
func (s *h1Source) writePending(fd int) bool {
	for len(s.pending) > 0 {
		n, err := syscall.Write(fd, s.pending)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			s.pending = nil
			s.err = &net.OpError{Op: "write", Net: "tcp", Err: err}
			return true
		}
		s.pending = s.pending[n:]
	}
	s.pending = nil
	return false
}
