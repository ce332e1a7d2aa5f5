// Package rawio sends a request and waits for its response in one pass
// through the runtime poller — write, wait for readable, read, as an event
// loop does. net.Conn's write-then-read runs its read right after the write,
// nearly always finds the response not there yet (EAGAIN) and only then
// parks: one wasted read syscall per request. The proxy's upstream
// connections (proxy/upconn.go) and the load generator's HTTP/1.1 client
// (bench/h1client.go) both use it.
//
// The write has to happen inside syscall.RawConn.Read: RawRead forgets any
// readiness seen before it starts, so a response that arrived between a
// separate write and the wait would never wake it.
package rawio

import (
	"io"
	"net"
	"syscall"
)

// WriteWait is an io.Reader over a connection that can send a queued
// request as part of its next Read. Its zero value reads nothing until
// Reset gives it a connection. It must not be copied after Reset: the
// RawConn callback is a method value bound to its address.
type WriteWait struct {
	// OpError builds the error returned for a failed read or write
	// syscall (op is "read" or "write"). Nil: &net.OpError{Op: op, Net:
	// "tcp", Err: err}, without addresses, so the message is the same on
	// every connection.
	OpError func(op string, err error) error

	conn    net.Conn        // the ordinary path
	rc      syscall.RawConn // nil when conn has no file descriptor
	pending []byte          // the request to send before the next read (nil: none)
	fn      func(fd uintptr) bool

	// State of one call of fn, kept here so that fn is one method value
	// made once rather than a closure per read.
	first bool
	p     []byte
	n     int
	err   error
}

// Reset switches w to conn (nil: none) and drops any queued request. It
// reports whether conn has a file descriptor, that is whether
// SendWithRead can combine the write with the wait.
func (w *WriteWait) Reset(conn net.Conn) bool {
	if w.fn == nil {
		w.fn = w.sendThenRead
	}
	w.conn, w.rc, w.pending = conn, nil, nil
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			w.rc = rc
		}
	}
	return w.rc != nil
}

// SendWithRead queues req to go out with the next Read; without a raw
// connection it writes at once (only then can it fail). The caller must
// know that no response byte or close is waiting unread on the connection:
// in the combined wait only a new readiness wakes the read, so one that
// came before it would be missed until the next event or the read
// deadline. req must stay unchanged until the next Read returns.
func (w *WriteWait) SendWithRead(req []byte) error {
	if w.rc == nil {
		_, err := w.conn.Write(req)
		return err
	}
	w.pending = req
	return nil
}

// Pending reports whether a queued request has not gone out yet.
func (w *WriteWait) Pending() bool { return w.pending != nil }

// Read implements io.Reader: it sends the pending request, if any, then
// waits for and reads response bytes; without one it is the connection's
// Read.
func (w *WriteWait) Read(p []byte) (int, error) {
	if w.pending == nil {
		return w.conn.Read(p)
	}
	w.first, w.p, w.n, w.err = true, p, 0, nil
	err := w.rc.Read(w.fn)
	w.p = nil
	if w.pending != nil {
		// Not all of the request went out without blocking (a full send
		// buffer): finish it the ordinary way, then read.
		rest := w.pending
		w.pending = nil
		if err == nil && w.err == nil {
			if _, err := w.conn.Write(rest); err != nil {
				return 0, err
			}
			return w.conn.Read(p)
		}
	}
	if err != nil {
		return 0, err // a *net.OpError already: the deadline, or the connection closed
	}
	return w.n, w.err
}

// sendThenRead is the RawConn.Read callback. Its first call writes the
// request and asks to wait for readability; later calls read. It returns
// true when done.
func (w *WriteWait) sendThenRead(fd uintptr) bool {
	if w.first {
		w.first = false
		return w.writePending(int(fd))
	}
	for {
		n, err := syscall.Read(int(fd), w.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // a stale readiness: wait again
		case err != nil:
			w.err = w.opError("read", err)
		case n == 0:
			w.err = io.EOF
		default:
			w.n = n
		}
		return true
	}
}

// writePending writes the request without blocking. It returns false to
// wait for the response, true to leave RawRead with w.err set or with the
// unwritten rest still pending.
func (w *WriteWait) writePending(fd int) bool {
	for len(w.pending) > 0 {
		n, err := syscall.Write(fd, w.pending)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			w.pending = nil
			w.err = w.opError("write", err)
			return true
		}
		w.pending = w.pending[n:]
	}
	w.pending = nil
	return false
}

// opError wraps a failed syscall with OpError, or with the default.
func (w *WriteWait) opError(op string, err error) error {
	if w.OpError != nil {
		return w.OpError(op, err)
	}
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}
