package frontdoor

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrRefused is what Read returns once the stream has been refused. It
// matches net.ErrClosed under errors.Is: fasthttp writes no error response of
// its own for a connection closed under it (it would otherwise answer a
// half-read request with its own 400), so the front door's refusal is the
// only answer the client sees.
var ErrRefused error = refusedError{}

type refusedError struct{}

func (refusedError) Error() string        { return "frontdoor: request refused" }
func (refusedError) Is(target error) bool { return target == net.ErrClosed }

// Listen wraps inner so that every accepted connection validates its request
// stream before the server reads it. Wrap the innermost listener that yields
// plaintext: the TLS listener when serving TLS, the TCP listener otherwise.
func Listen(inner net.Listener, cfg Config) net.Listener {
	return &listener{Listener: inner, cfg: cfg.withDefaults()}
}

type listener struct {
	net.Listener
	cfg Config
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c, l.cfg), nil
}

// tlsConner is what fasthttp looks for to learn that a connection is TLS
// (RequestCtx.IsTLS, TLSConnectionState); Wrap keeps it visible.
type tlsConner interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// Wrap returns c with its request stream validated. If c is a TLS connection
// the result is one too, as far as fasthttp can tell.
func Wrap(c net.Conn, cfg Config) net.Conn {
	fc := &Conn{Conn: c, cfg: cfg.withDefaults()}
	fc.v.init(fc.cfg)
	if sc, ok := c.(syscall.Conn); ok {
		fc.raw, _ = sc.SyscallConn()
	}
	if t, ok := c.(tlsConner); ok {
		return &tlsConn{Conn: fc, tls: t}
	}
	return fc
}

// Conn is a connection whose reads pass through a Validator. Valid bytes
// reach the reader unchanged, one request per Read (bytes of the next request
// wait in a small buffer), so the server flushes each response before it
// reads on. At the first violation Read stops short of the offending line,
// then returns ErrRefused; writes after that are the server's own error
// answer to a half-read request and are discarded. When the server closes the
// connection, Conn writes the refusal, shuts its write side and drains
// briefly before closing, so the answer is not lost to a TCP reset. A refusal
// the server never read (because it closed first, say after
// "Connection: close") is not sent: the client's later bytes are not requests
// the server agreed to read.
//
// Read and Write must not be called concurrently with themselves; Close may
// be called from any goroutine, as fasthttp's Shutdown does. A connection
// hijacked for another protocol (a WebSocket after 101) must be switched
// with PassThrough first, or the validator refuses the first non-HTTP byte.
type Conn struct {
	net.Conn
	cfg Config
	v   Validator // owned by the reading goroutine

	passThrough bool // bytes after the last request are another protocol; owned by the reader

	pending []byte          // read from the client, not yet validated; owned by the reader
	pendBuf []byte          // backing array of pending, reused
	readErr error           // error that came with pending bytes, returned once they are gone
	raw     syscall.RawConn // the socket, for fill; nil when not a plain socket (TLS)
	pooled  *[]byte         // a readPool buffer that pending points into, if any

	delivered atomic.Pointer[Refusal] // set once Read has returned ErrRefused
	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*Conn)(nil)

// Read returns the client's next validated bytes, at most up to the end of
// the current request.
func (c *Conn) Read(p []byte) (int, error) {
	if c.passThrough {
		return c.readThrough(p)
	}
	if r := c.v.Refusal(); r != nil {
		return c.deliver(r)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.pending) == 0 && c.readErr == nil && len(p) < smallRead && c.raw != nil {
		c.fill()
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		ok, r := c.v.FeedMessage(p[:n])
		c.pending = c.pending[ok:]
		return c.finish(ok, r)
	}
	c.releasePooled()
	if err := c.readErr; err != nil {
		c.readErr = nil
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return 0, err
	}
	c.readErr = err
	ok, r := c.v.FeedMessage(p[:n])
	if r == nil && ok < n {
		c.pendBuf = append(c.pendBuf[:0], p[ok:n]...)
		c.pending = c.pendBuf
	}
	return c.finish(ok, r)
}

// PassThrough ends validation: the bytes after the request just read are
// another protocol (RFC 9110 §7.8 Upgrade; a WebSocket after 101) and
// reach the reader unchanged, starting with any already buffered. It must
// be called by the reading goroutine (a fasthttp handler) between reads,
// at a request boundary.
func (c *Conn) PassThrough() { c.passThrough = true }

// readThrough is Read after PassThrough.
func (c *Conn) readThrough(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.releasePooled()
		return n, nil
	}
	c.releasePooled()
	if err := c.readErr; err != nil {
		c.readErr = nil
		return 0, err
	}
	return c.Conn.Read(p)
}

// finish turns the validator's answer on ok bytes into Read's result.
func (c *Conn) finish(ok int, r *Refusal) (int, error) {
	if r != nil {
		c.pending, c.pendBuf, c.readErr = nil, nil, nil
		c.releasePooled()
		if ok == 0 {
			return c.deliver(r)
		}
		return ok, nil
	}
	if len(c.pending) > 0 {
		return ok, nil
	}
	c.releasePooled()
	if cap(c.pendBuf) > keepPending {
		c.pendBuf = nil // a burst of pipelining should not pin memory on an idle connection
	}
	err := c.readErr
	c.readErr = nil
	return ok, err
}

// keepPending is the largest pending buffer kept once drained.
const keepPending = 16 << 10

func (c *Conn) deliver(r *Refusal) (int, error) {
	c.delivered.Store(r)
	return 0, ErrRefused
}

// Write sends p, unless a refusal has been delivered: what the server writes
// then is its own error answer, which the refusal replaces.
func (c *Conn) Write(p []byte) (int, error) {
	if c.delivered.Load() != nil {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// ReadFrom writes what r yields to the client, handing r to the wrapped
// connection's own ReadFrom where it has one, so a plain TCP connection can
// splice(2) a response body from an upstream socket. Like Write, it
// discards once a refusal was delivered.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if c.delivered.Load() != nil {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writeOnly{c.Conn}, r)
}

// writeOnly hides a writer's ReadFrom from io.Copy.
type writeOnly struct{ w io.Writer }

func (w writeOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

// NetConn returns the connection Conn wraps, as tls.Conn.NetConn does.
// Reads on it bypass validation: it is for callers that only discard what
// they read, such as draining a connection refused before any request.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Refused returns the refusal the server has been told of, or nil.
func (c *Conn) Refused() *Refusal { return c.delivered.Load() }

// Close sends a delivered refusal, then closes the connection. Only the first
// call does anything.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if r := c.delivered.Load(); r != nil {
			c.answer(r)
		}
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// answer writes r and lingers (RFC 9112 §9.6): shut the write side, then read
// and discard what the client still sends, for at most LingerTimeout, so the
// kernel does not reset the connection while r is still in flight.
func (c *Conn) answer(r *Refusal) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if _, err := c.Conn.Write(r.response); err != nil {
		return
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.cfg.LingerTimeout))
	_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
}

// lingerBytes bounds how much a refused client may still make us read.
const lingerBytes = 256 << 10

// tlsConn is a Conn over a TLS connection that keeps the TLS methods visible.
type tlsConn struct {
	*Conn
	tls tlsConner
}

func (c *tlsConn) Handshake() error                     { return c.tls.Handshake() }
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// Unwrap returns the Conn of a wrapped connection, or nil if c was not made
// by Wrap or Listen.
func Unwrap(c net.Conn) *Conn {
	switch fc := c.(type) {
	case *Conn:
		return fc
	case *tlsConn:
		return fc.Conn
	}
	return nil
}

// smallRead is the read size below which Read fills from the socket into a
// pooled buffer instead of the caller's. fasthttp, to hold no buffer on an
// idle keep-alive connection, waits for each request with a 1-byte Read and
// then reads the rest: two read syscalls per request, one of them for a
// single byte. Reading a whole chunk into a pooled buffer answers both from
// one syscall, and the buffer is taken only once the socket is readable, so
// an idle connection still holds none.
const smallRead = 512

// readPool holds fill's buffers. 4 KiB takes a typical request head whole.
var readPool = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// fill reads what the socket has into a pooled buffer and makes it pending
// (or sets readErr). It waits for readability through the runtime poller
// (honouring deadlines) before taking a buffer.
func (c *Conn) fill() {
	var (
		bp   *[]byte
		n    int
		rerr error
	)
	err := c.raw.Read(func(fd uintptr) bool {
		bp = readPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			readPool.Put(bp)
			bp = nil
			return false // not readable yet: wait without holding a buffer
		}
		return true
	})
	switch {
	case err != nil: // deadline, or the connection was closed
		c.readErr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case rerr != nil:
		c.readErr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n <= 0:
		c.readErr = io.EOF
	default:
		c.pooled, c.pending = bp, (*bp)[:n]
		return
	}
	if bp != nil {
		readPool.Put(bp)
	}
}

// releasePooled returns fill's buffer once nothing pending points into it.
func (c *Conn) releasePooled() {
	if c.pooled != nil && len(c.pending) == 0 {
		readPool.Put(c.pooled)
		c.pooled = nil
		c.pending = nil
	}
}

// Unlisten returns what Listen wrapped and its config, or ok false when ln
// is not a front-door listener. The proxy's loop core (proxy/loopcore.go)
// accepts on the socket beneath itself and validates with the same config.
func Unlisten(ln net.Listener) (inner net.Listener, cfg Config, ok bool) {
	l, ok := ln.(*listener)
	if !ok {
		return ln, Config{}, false
	}
	return l.Listener, l.cfg, true
}
