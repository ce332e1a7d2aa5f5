//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// lpool is a loop's keep-alive pool for one endpoint: idle connections,
// last used first (as the goroutine core's pools, fasthttp.LIFO).
type lpool struct {
	ep   *endpoint
	sa   unix.Sockaddr // the endpoint's address; nil until a host name is looked up
	idle []*lup
	gen  uint32 // ep.loopGen the idle connections belong to

	// A host name is looked up off the loop (loopresolve.go): named says
	// the endpoint is one, resolving that a lookup runs, resolvedAt when
	// the last one found sa (UnixNano), waiting the requests that wait
	// for it.
	named      bool
	resolving  bool
	resolvedAt int64
	waiting    []waiter
}

// lup is an upstream connection of a loop.
type lup struct {
	fd   int
	pool *lpool
	c    *lconn // the request it carries; nil while idle

	connecting bool
	queued     bool   // the head waits for the end of the batch (loopbatch.go)
	ev         uint32 // the epoll interest set (upInterest)
	wrote      int    // bytes of the request head (and buffered body, loopbody.go) written
	headSent   bool   // all of the head is written
	used       bool   // it carried a response and went to the pool (staleRepeat)
	deadline   int64  // while busy: connect, write or read timeout (UnixNano)
	idleUntil  int64  // while idle: when the pool closes it
	buf        []byte
}

const upBufSize = 16 << 10

var errUpstreamHeadTooLarge = errors.New("loop core: upstream response head too large")

// pool returns the loop's pool for ep.
func (l *loop) pool(ep *endpoint) *lpool {
	pl := l.pools[ep]
	if pl == nil {
		pl = newPool(ep)
		l.pools[ep] = pl
	}
	return pl
}

// getUp returns a connection to ep: the pool's most recent idle one, or a
// new one (connecting when the connect is under way). It fails with
// fasthttp.ErrNoFreeConns at max_conns_per_endpoint, as the goroutine
// core's pool does, with errResolving while a host name is looked up
// (loopresolve.go), or with the dial's error.
func (l *loop) getUp(ep *endpoint) (*lup, error) {
	pl := l.pool(ep)
	if g := ep.loopGen.Load(); g != pl.gen { // closeIdle: the endpoint died
		for _, u := range pl.idle {
			l.closeUp(u)
		}
		pl.idle, pl.gen = pl.idle[:0], g
	}
	if n := len(pl.idle); n > 0 {
		u := pl.idle[n-1]
		pl.idle = pl.idle[:n-1]
		l.nidle--
		return u, nil
	}
	if m := l.p.options().MaxConnsPerEndpoint; m > 0 && ep.loopConns.Load()+int64(ep.client.ConnsCount()) >= int64(m) {
		return nil, fasthttp.ErrNoFreeConns
	}
	if pl.named {
		switch {
		case pl.sa == nil:
			l.resolve(pl)
			return nil, errResolving
		case l.resolveNow()-pl.resolvedAt >= int64(resolveFor):
			l.resolve(pl) // again, in the background: this dial takes the last address
		}
	}
	return l.dial(pl)
}

func (l *loop) dial(pl *lpool) (*lup, error) {
	family := unix.AF_INET
	if _, ok := pl.sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop core: dial %s: %w", pl.ep.addr, err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	u := &lup{fd: fd, pool: pl, buf: make([]byte, 0, upBufSize)}
	switch err := unix.Connect(fd, pl.sa); err {
	case nil:
	case unix.EINPROGRESS:
		u.connecting = true
	default:
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%s: %w", pl.ep.addr, err)}
	}
	u.ev = evIn
	if u.connecting {
		u.ev = unix.EPOLLOUT
	}
	if err := l.ctl(unix.EPOLL_CTL_ADD, fd, u.ev); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("loop core: dial %s: epoll: %w", pl.ep.addr, err)
	}
	l.setUp(fd, u)
	pl.ep.loopConns.Add(1)
	return u, nil
}

// closeUp closes an upstream connection.
func (l *loop) closeUp(u *lup) {
	if u.fd < 0 {
		return
	}
	if u.c == nil && !u.connecting {
		// idle: take it out of its pool
		idle := u.pool.idle
		for i, v := range idle {
			if v == u {
				u.pool.idle = append(idle[:i], idle[i+1:]...)
				l.nidle--
				break
			}
		}
	}
	if u.c != nil && u.c.u == u {
		u.c.u = nil
	}
	l.up[u.fd] = nil
	unix.Close(u.fd) // leaves the epoll set with its last descriptor
	u.fd, u.queued = -1, false
	u.c = nil
	u.pool.ep.loopConns.Add(-1)
}

// putUp gives u back to its pool when reusable (and idleRoom has room);
// closes it otherwise.
func (l *loop) putUp(u *lup, reusable bool) {
	c := u.c
	if c != nil {
		c.u = nil
	}
	u.c = nil
	if !reusable || len(u.buf) > 0 || !l.idleRoom() || u.pool.gen != u.pool.ep.loopGen.Load() || u.pool.ep.removed.Load() {
		u.c = nil
		l.closeUp(u)
		return
	}
	u.wrote, u.headSent, u.deadline, u.used, u.queued = 0, false, 0, true, false
	u.idleUntil = l.now + int64(l.idleFor())
	l.upInterest(u, evIn) // a close or stray bytes while idle: closeUp
	u.pool.idle = append(u.pool.idle, u)
	l.nidle++
}

// idleRoom reports whether the loop may keep one more idle upstream
// connection. Up to one per client connection of the loop always; beyond
// that, up to the room its share of the cap (max_conns over the loops)
// has left after its own client connections. Each idle connection then
// stands in for a descriptor an absent client would have held, so the
// descriptor budget (fdbudget.go) has the same worst case as with one per
// client. The share is the loop's own, read without the tracker's lock:
// this runs once per response.
// Without the second part, a loop whose users spread over many cells (one
// pool per cell endpoint) closed a connection after most responses, once
// its idle ones, one per client, sat in other cells' pools, and dialled a
// new one for the next request: with 64 clients over 16 cells ~13 % of
// requests dialled, +59 % CPU per request, and the upstream host's
// TIME_WAIT sockets grew by thousands a second (bench/README.md,
// "Scaling": cells).
func (l *loop) idleRoom() bool {
	n := int(l.nconns.Load())
	if l.nidle < n {
		return true
	}
	max := l.p.conns.max
	if max <= 0 {
		return false // no cap, no budget to borrow from: one per client
	}
	return l.nidle < max/len(l.lc.loops)-n
}

// closePoolIdle closes the loop's idle connections to ep (staleRepeat:
// they are as old as the one the upstream closed).
func (l *loop) closePoolIdle(ep *endpoint) {
	pl := l.pools[ep]
	if pl == nil {
		return
	}
	for len(pl.idle) > 0 {
		l.closeUp(pl.idle[len(pl.idle)-1])
	}
}

func (l *loop) idleFor() time.Duration {
	if d := l.p.options().MaxIdleConnDuration; d > 0 {
		return d
	}
	return 10 * time.Second // fasthttp's DefaultMaxIdleConnDuration
}

// upInterest sets u's epoll interest to ev; a system call only when it
// changes (most requests on a pooled connection change nothing).
func (l *loop) upInterest(u *lup, ev uint32) {
	if u.ev != ev {
		u.ev = ev
		_ = l.ctl(unix.EPOLL_CTL_MOD, u.fd, ev)
	}
}

func (l *loop) upDeadline(u *lup, d time.Duration) { u.deadline = l.deadlineIn(d) }

// attempt is one of forward's attempts (handler.go): pick an endpoint
// (not the one that failed), take a connection, send the head.
func (l *loop) attempt(c *lconn) {
	st, p := c.st, l.p
	st.acc.retried = c.attempt > 0 || c.fresh
	ep := c.again
	if ep == nil {
		ep = st.cell.pickEndpoint(p.rand(), c.tried, p.health.nowNano)
	}
	c.again = nil
	if ep == nil {
		cs := causeNoEndpoint
		if c.tried != nil {
			cs = st.lastCause
		}
		l.roundEnd(c, cs)
		return
	}
	st.ep = ep
	ep.outstanding.Add(1)
	st.respByte, st.gotHead = false, false
	l.connect(c, ep)
}

// connect takes a connection to ep for the attempt and sends the head, or
// leaves the request waiting for the endpoint's address (loopresolve.go).
func (l *loop) connect(c *lconn, ep *endpoint) {
	st, p := c.st, l.p
	u, err := l.getUp(ep)
	if err == errResolving {
		pl := l.pools[ep]
		pl.waiting = append(pl.waiting, waiter{c: c, gen: c.gen})
		c.waiting = pl
		return
	}
	if err != nil {
		l.attemptFailed(c, classify(err, false), false, false)
		return
	}
	u.c, c.u = c, u
	u.buf = u.buf[:0]
	st.upReused = u.used
	if u.connecting {
		l.upDeadline(u, p.options().ConnectTimeout)
		return
	}
	l.queueHead(c, u)
}

// sendHead writes the request head, or what is left of it.
func (l *loop) sendHead(c *lconn, u *lup) {
	u.queued = false
	c.bodySent(c.st)
	h := c.st.head
	for u.wrote < len(h) {
		n, err := rawSend(u.fd, h[u.wrote:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.upInterest(u, unix.EPOLLOUT)
			l.upDeadline(u, l.p.options().UpstreamWriteTimeout)
			return
		}
		if err != nil {
			e := &net.OpError{Op: "write", Net: "tcp", Err: err}
			l.attemptFailed(c, classify(e, true), true, connLost(e))
			return
		}
		u.wrote += n
	}
	u.headSent = true
	l.upInterest(u, evIn)
	l.upDeadline(u, l.p.options().UpstreamReadTimeout)
}

// upstreamEvent handles readiness of an upstream connection.
func (l *loop) upstreamEvent(u *lup, ev uint32) {
	c := u.c
	if c == nil {
		l.closeUp(u) // idle: the upstream closed it, or sent bytes nobody asked for
		return
	}
	if u.connecting {
		u.connecting = false
		if e, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if err == nil {
				err = syscall.Errno(e)
			}
			l.attemptFailed(c, classify(&net.OpError{Op: "dial", Net: "tcp", Err: err}, false), false, false)
			return
		}
		l.sendHead(c, u)
		return
	}
	if !u.headSent {
		l.sendHead(c, u)
		return
	}
	if len(c.out) > 0 {
		l.upInterest(u, 0) // the client has not taken the last bytes
		return
	}
	if !c.st.gotHead {
		l.readHead(c, u)
		return
	}
	l.readBody(c, u)
}

// upExpired handles a busy upstream connection whose deadline passed.
func (l *loop) upExpired(u *lup) {
	c := u.c
	u.deadline = 0
	switch {
	case u.connecting:
		l.attemptFailed(c, causeConnectTimeout, false, false)
	case !c.st.gotHead:
		l.attemptFailed(c, causeTimeout, true, false)
	default:
		l.truncated(c, fmt.Errorf("upstream body: %w", errTimeout{}))
	}
}

// attemptFailed settles a failed attempt as forward does and retries, goes
// to the next round (forwardFailover) or answers the failure.
func (l *loop) attemptFailed(c *lconn, cs cause, sent, lost bool) {
	st := c.st
	ep := st.ep
	// A body went with the head (loopbody.go): like one the goroutine
	// core read (roundTrip), it was not lost, and is never repeated.
	lost = lost && st.bodyRead == 0
	if u := c.u; u != nil {
		l.closeUp(u) // a failed exchange leaves unknown bytes on it
	}
	ep.outstanding.Add(-1)
	st.ep, st.acc.tried = nil, ep.addr
	if st.staleRepeat(lost, c.fresh, c.ctx.Method()) {
		// A pooled connection the upstream closed as the request went
		// out (the loop drops those whose close it saw while idle):
		// repeated on a fresh connection, as forward repeats it.
		l.closePoolIdle(ep)
		c.again, c.fresh = ep, true
		l.attempt(c)
		return
	}
	if cs == causeReset && !st.gotHead && l.p.health.after.Load() > 0 {
		l.probe(c, ep, cs, sent, lost) // noteFailure may dial: off the loop (loopprobe.go)
		return
	}
	if st.attemptFailed(ep, cs, c.attempt, sent, lost, c.ctx.Method()) {
		c.tried = ep
		c.attempt++
		l.attempt(c)
		return
	}
	l.roundEnd(c, cs)
}

// roundEnd ends a round of attempts that failed with cs: another round,
// or the failure's answer (handle's fail).
func (l *loop) roundEnd(c *lconn, cs cause) {
	st := c.st
	if st.nextRound(cs, c.round, c.deaths, c.snap, c.rt.keyHash, c.rt.idx, c.ctx.Method()) {
		c.round++
		l.beginRound(c)
		return
	}
	c.st = nil
	l.p.fail(c.ctx, st, cs) // writes the answer into ctx.Response; finishes st
	l.writeCtx(c)
}

// abandon ends the request under way without an answer: its client went
// away or the loop is closing.
func (l *loop) abandon(c *lconn) {
	st := c.st
	if c.probing {
		c.st = nil // the probe's goroutine holds st: it is left to the collector, unrecorded
		return
	}
	if u := c.u; u != nil {
		l.closeUp(u)
	}
	c.st = nil
	if st.gotHead {
		st.finish(st.status, false) // as the goroutine core's server, whose write failed
		return
	}
	if st.ep != nil {
		st.ep.outstanding.Add(-1)
		st.ep = nil
	}
	st.release()
}

// readErr is what a failed read of an upstream connection means.
func readErr(n int, err error) error {
	if n == 0 && err == nil {
		return io.EOF
	}
	return &net.OpError{Op: "read", Net: "tcp", Err: err}
}
