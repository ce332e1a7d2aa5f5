//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/cellgate/cellgate/proxy/frontdoor"
)

// lconn is a client connection a loop serves, and the request it has under
// way. The request's working set is the goroutine core's (reqState, a
// fasthttp.RequestCtx with the parsed request), so routing, the upstream
// head, the client's response head, recording and the access log run the
// same code on both cores.
type lconn struct {
	fd    int
	raddr net.Addr
	// peer is raddr as route reads it (peerAddr) and peerText as text,
	// set by the connection's first request (peerSet) for all of them.
	peer     netip.Addr
	peerText []byte
	peerSet  bool
	stub     loopStub // what ctx.Conn() returns
	v        frontdoor.Validator
	ctx      *fasthttp.RequestCtx

	in  []byte // client bytes from the current request's first on
	fed int    // bytes of in already fed to v
	// body is the length of the current request's body, the last bytes
	// of in[:fed] once it is whole (loopbody.go); bodyWait says its head
	// was parsed and the loop serves it: the rest of the body is awaited.
	body     int
	bodyWait bool
	// raw is the parsed head's field lines as fasthttp's RawHeaders
	// gives them (simpleHead's or the parser's), aliasing in.
	raw []byte
	// expect100 says the parsed request asks "Expect: 100-continue";
	// continued that the loop has answered it "100 Continue" (loopexpect.go).
	expect100 bool
	continued bool
	out       []byte // bytes for the client a write left over

	paused     bool   // client reads are off: a request is under way and the client sent more
	ev         uint32 // the epoll interest set (events32)
	writing    bool   // EPOLLOUT is on for out
	deadline   int64  // UnixNano when the current wait times out; 0: none
	closeAfter bool   // close once the response is out

	// The request under way (nil between requests) and its forwarding
	// state: forward's attempts and forwardFailover's rounds, as the
	// goroutine core runs them (handler.go, cellhealth.go).
	st      *reqState
	u       *lup
	rt      routed
	snap    *snapshot
	attempt int
	round   int
	deaths  uint64
	tried   *endpoint
	// again is the endpoint the next attempt goes to (a stale pooled
	// connection's repeat), fresh whether the round spent that repeat
	// (forward's again and fresh).
	again *endpoint
	fresh bool

	rs relay // the response body on its way (loopresp.go)
	// queued: out holds bytes waiting for the end of the batch
	// (loopbatch.go).
	queued bool

	// probing is set while a goroutine settles a failed attempt that
	// needs a dial (loopprobe.go); gen tells a result for this request
	// from one for a connection since recycled.
	probing bool
	gen     uint64
	// waiting is the pool whose host name the request waits to be looked
	// up (loopresolve.go).
	waiting *lpool
}

// maxHead bounds the client bytes a loop buffers for one request, head
// and body (loopbody.go); a longer head is handed to the goroutine core,
// whose front door and server refuse it with their answers.
func (l *loop) maxHead() int { return max(l.p.opts.ReadBufferSize, inStart) }

// inStart is a new connection's read buffer: most request heads fit, and
// an idle connection holds no more (a head that does not fit grows the
// buffer, up to maxHead).
const inStart = 4 << 10

func (l *loop) newConn(fd int, sa unix.Sockaddr) *lconn {
	var c *lconn
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		c = &lconn{ctx: new(fasthttp.RequestCtx), in: l.smallBuf()}
		c.stub.c = c
		// Once for the connection state's life: ctx.Conn() is the stub,
		// whose address follows the connection; the request path reads a
		// request's time from st.start (start), not ctx.Time().
		c.ctx.Init2(&c.stub, nil, true)
	}
	c.fd, c.raddr = fd, sockAddr(sa)
	c.v.Reset(l.fdConfig())
	l.readDeadline(c) // fasthttp: read_timeout for the first request
	return c
}

// fdConfig is the front door's config, or its defaults when Serve's
// listener had none (the loop still frames requests with a Validator).
func (l *loop) fdConfig() frontdoor.Config {
	if l.lc.fd != nil {
		return *l.lc.fd
	}
	return frontdoor.DefaultConfig()
}

// closeConn closes a client connection and forgets it.
func (l *loop) closeConn(c *lconn) {
	l.dropConn(c)
	unix.Close(c.fd)
	l.p.conns.releaseLoop(false)
	l.recycle(c)
}

// dropConn takes c out of the loop (its descriptor stays open).
func (l *loop) dropConn(c *lconn) {
	_ = l.ctl(unix.EPOLL_CTL_DEL, c.fd, 0)
	l.cl[c.fd] = nil
	l.nconns.Add(-1)
}

func (l *loop) recycle(c *lconn) {
	c.gen++
	c.probing, c.waiting = false, nil
	c.fd, c.raddr, c.peerSet = -1, nil, false
	c.in, c.fed, c.out = c.in[:0], 0, c.out[:0]
	c.body, c.bodyWait = 0, false
	c.raw = nil
	c.expect100, c.continued = false, false
	c.paused, c.writing, c.deadline, c.closeAfter, c.ev = false, false, 0, false, 0
	c.queued = false
	c.st, c.u, c.snap, c.tried, c.again, c.fresh = nil, nil, nil, nil, nil, false
	c.rs = relay{}
	l.shrinkIn(c)
	if cap(c.out) > 64<<10 {
		return // grown for one big response: let it go
	}
	l.free = append(l.free, c)
}

// handoff gives c to the goroutine core with the bytes it has read and not
// served (the current request's, from its first byte), before any byte of
// that request went upstream.
func (l *loop) handoff(c *lconn) {
	pre := append([]byte(nil), c.in...)
	fd := c.fd
	l.handed.Add(1)
	l.dropConn(c)
	l.p.conns.releaseLoop(true)
	l.recycle(c)
	tc, err := connFromFD(fd)
	if err != nil {
		l.p.conns.mu.Lock()
		l.p.conns.handing--
		l.p.conns.mu.Unlock()
		l.p.log.Warn("loop core: hand-off failed; connection closed", "err", err)
		return
	}
	var nc net.Conn = newPrefixConn(tc, pre)
	if cfg := l.lc.fd; cfg != nil {
		nc = frontdoor.Wrap(nc, *cfg)
	}
	go l.lc.handoff(nc)
}

// clientEvent handles readiness of a client connection.
func (l *loop) clientEvent(c *lconn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if !l.flush(c) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 || c.fd < 0 {
		return
	}
	if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.st != nil {
		l.clientFailed(c) // gone both ways (these cannot be masked by pause)
		return
	}
	if c.st != nil {
		// A pipelining client, or one that closed: stop reading until the
		// answer is out (level triggering would wake the loop again and
		// again). A close is seen when reading resumes.
		l.pause(c)
		return
	}
	if len(c.in) == cap(c.in) {
		if cap(c.in) >= l.maxHead() {
			l.handoff(c) // a head larger than the loop buffers
			return
		}
		l.growIn(c)
	}
	n, err := rawRecv(c.fd, c.in[len(c.in):cap(c.in)])
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		l.closeConn(c) // EOF or error between requests
		return
	}
	if len(c.in) == 0 {
		l.readDeadline(c)
	}
	c.in = c.in[:len(c.in)+n]
	l.next(c)
}

func (l *loop) pause(c *lconn) {
	if !c.paused {
		c.paused = true
		l.events32(c)
	}
}

// events32 sets c's epoll interest from paused and writing.
func (l *loop) events32(c *lconn) {
	var ev uint32
	if !c.paused {
		ev = evIn
	}
	if c.writing {
		ev |= unix.EPOLLOUT
	}
	if ev != c.ev {
		c.ev = ev
		_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, ev)
	}
}

// http2Preface is what an HTTP/2 connection with prior knowledge opens
// with (RFC 9113 §3.4); the goroutine core sorts those (h2front.go).
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// next validates the buffered client bytes and starts the request they
// hold, or hands the connection over when the loop does not serve it.
func (l *loop) next(c *lconn) {
	switch l.frame(c) {
	case frameHandoff:
		l.handoff(c)
	case frameWait:
		if c.bodyWait {
			l.continue100(c)
		}
	case frameServe:
		l.continue100(c)
		l.start(c)
	}
}

// reqVerdict is what frame makes of the client bytes buffered for a request.
type reqVerdict uint8

const (
	frameWait    reqVerdict = iota // more bytes are needed: a head, or a body the loop serves
	frameHandoff                   // the goroutine core serves it, from its first byte
	frameServe                     // a whole request the loop serves, parsed into c.ctx
)

// frame validates the client bytes not yet fed (c.in[c.fed:]) and decides
// what becomes of the request they belong to. It touches c's buffers and
// parsed request only, no socket (FuzzLoopFraming drives it alone).
func (l *loop) frame(c *lconn) reqVerdict {
	if len(c.in) == 0 {
		return frameWait
	}
	if c.v.Requests() == 0 && c.fed == 0 && bytes.HasPrefix(http2Preface, c.in[:min(len(c.in), len(http2Preface))]) {
		if len(c.in) < len(http2Preface) {
			return frameWait // "P", "PR"...: a POST or PUT arriving in pieces, or a preface; more bytes tell
		}
		return frameHandoff // HTTP/2 with prior knowledge: the goroutine core serves it
	}
	before := c.v.Requests()
	n, r := c.v.FeedMessage(c.in[c.fed:])
	c.fed += n
	if r != nil {
		return frameHandoff // the front door refuses it there, with its answer
	}
	if c.v.Requests() == before {
		switch {
		case c.bodyWait:
			// the rest of a body the loop serves: more bytes, or read_timeout
		case headEnd(c.in, 0) >= 0:
			// A whole head, a body still to come: awaited when the loop
			// serves it (loopbody.go), handed over now otherwise.
			if c.bodyWait = l.parse(c, false); !c.bodyWait {
				return frameHandoff
			}
		case len(c.in) >= l.maxHead():
			return frameHandoff // a huge head
		}
		return frameWait
	}
	c.bodyWait = false
	if !l.parse(c, true) {
		return frameHandoff
	}
	return frameServe
}

// parse reads the request head in c.in[:c.fed] into c.ctx and reports
// whether the loop serves it: HTTP/1.1, no body or a Content-Length body
// that fits (bodyFits), no Upgrade, no Expect but 100-continue
// (loopexpect.go), not gRPC, not OFREP, and a
// snapshot of plain HTTP/1.1 cells. whole says c.in[:c.fed] is the whole
// request; otherwise it is a head and part of its body, and parse decides
// whether the loop awaits the rest. It sets c.body.
func (l *loop) parse(c *lconn, whole bool) bool {
	req := &c.ctx.Request
	req.Reset()
	req.Header.DisableNormalizing()
	c.ctx.Response.Reset()
	c.ctx.Response.Header.DisableNormalizing()
	h := &req.Header
	if whole && !l.slowHead {
		var ok bool
		if c.raw, ok = simpleHead(h, c.in[:c.fed]); ok {
			c.body, c.expect100 = 0, false // no body, no Expect
			return l.loopable(c)
		}
		h.Reset()
		h.DisableNormalizing()
	}
	l.src.Reset(c.in[:c.fed])
	l.br.Reset(&l.src)
	if err := h.Read(l.br); err != nil {
		return false
	}
	c.raw = h.RawHeaders()
	rest := l.br.Buffered() + l.src.Len() // the body's bytes at hand
	switch cl := h.ContentLength(); {
	case cl == 0 || cl == -2:
		if rest > 0 || !whole {
			return false
		}
	case cl > 0:
		if !l.bodyFits(c.fed-rest, cl) || (whole && rest != cl) || rest > cl {
			return false
		}
	default:
		return false
	}
	c.body = rest
	if !h.IsHTTP11() || h.IsConnect() || len(h.Peek("Upgrade")) > 0 ||
		len(h.Peek("Transfer-Encoding")) > 0 || isGRPC(h) {
		return false
	}
	if c.expect100 = len(h.Peek("Expect")) > 0; c.expect100 && !req.MayContinue() {
		return false // another expectation: the goroutine core's
	}
	return l.loopable(c)
}

// loopable reports whether the loop serves the parsed request as far as
// the configuration says: a snapshot of plain HTTP/1.1 cells, not OFREP.
func (l *loop) loopable(c *lconn) bool {
	if !l.p.snap.Load().loopable {
		return false
	}
	if o := &l.p.options().OFREPPrefix; *o != "" && l.p.isOFREP(c.ctx, *o) {
		return false
	}
	return true
}

// start routes the parsed request (the goroutine core's route), builds
// its upstream head and makes the first attempt.
func (l *loop) start(c *lconn) {
	ctx := c.ctx
	l.served.Add(1)
	c.deadline = 0
	c.closeAfter = l.p.draining.Load() || ctx.Request.Header.ConnectionClose()
	st := l.acquireState()
	st.start = l.startClock()
	st.client = &c.stub
	c.givePeer(st)
	snap := l.p.snap.Load()
	rt, ok := l.p.route(ctx, st, snap)
	if !ok {
		l.writeCtx(c) // answered (no cell): st is finished
		return
	}
	c.st, c.rt, c.snap = st, rt, snap
	// Client reads stay on: a pipelining client's next bytes pause them
	// when they come (clientEvent), which most clients never cause.
	st.bodyLen = int64(ctx.Request.Header.ContentLength())
	in := st.headInfo(ctx)
	st.head = st.scrub.appendRequestHead(st.head[:0], &ctx.Request.Header, c.raw, &in)
	c.appendBody(st)
	c.round = 0
	l.beginRound(c)
}

// acquireState is the proxy's acquireState from the loop's own free list
// first (no sync.Pool per request); the state goes back to it on release.
func (l *loop) acquireState() *reqState {
	var st *reqState
	if n := len(l.states); n > 0 {
		st = l.states[n-1]
		l.states = l.states[:n-1]
	} else {
		st = l.p.acquireState()
	}
	st.spare = &l.states
	return st
}

// givePeer sets the request's client address (route's peerAddr) and its
// text from the connection's, which its first request works out.
func (c *lconn) givePeer(st *reqState) {
	if !c.peerSet {
		c.peer = peerAddr(c.ctx)
		c.peerText, c.peerSet = appendPeer(c.peerText[:0], c.peer), true
	}
	st.peer, st.peerText, st.peerSet = c.peer, c.peerText, true
}

// beginRound starts a round of forward's attempts (forwardFailover).
func (l *loop) beginRound(c *lconn) {
	c.deaths = c.st.cell.stats.deaths.Load()
	c.attempt, c.tried, c.again, c.fresh = 0, nil, nil, false
	c.st.failedEp, c.st.lost = nil, false
	l.attempt(c)
}

// requestDone ends the request under way: the response is out (or
// abandoned). The connection serves its next request or closes.
func (l *loop) requestDone(c *lconn) {
	c.st = nil
	c.snap, c.tried, c.again = nil, nil, nil
	rest := copy(c.in, c.in[c.fed:])
	c.in, c.fed, c.body = c.in[:rest], 0, 0
	c.expect100, c.continued = false, false
	if cap(c.in) > inStart {
		l.shrinkIn(c) // idle again, or nearly: give a grown buffer back (loopbuf.go)
	}
	if c.closeAfter {
		l.closeConn(c)
		return
	}
	if l.draining && rest == 0 {
		l.closeConn(c)
		return
	}
	c.paused = false
	l.events32(c)
	if rest > 0 {
		l.readDeadline(c)
		l.next(c)
		return
	}
	l.idleDeadline(c)
}

// writeCtx writes the response in c.ctx as the goroutine core's server
// writes one (fasthttp's Response.Write, "Connection: close" when the
// connection ends after it) and ends the request.
func (l *loop) writeCtx(c *lconn) {
	resp := &c.ctx.Response
	if c.closeAfter || resp.ConnectionClose() {
		c.closeAfter = true
		resp.SetConnectionClose()
	}
	if c.ctx.IsHead() {
		resp.SkipBody = true
	}
	l.sink.b = l.eb[:0]
	l.wb.Reset(&l.sink)
	if err := resp.Write(l.wb); err == nil {
		_ = l.wb.Flush()
	}
	l.eb = l.sink.b
	l.toClient(c, l.eb, true)
}

// toClient writes b to the client: at the end of the batch when it is
// small (loopbatch.go), at once otherwise; what the socket does not take
// waits in c.out for writability. b is not kept. last says the response
// ends with b.
func (l *loop) toClient(c *lconn, b []byte, last bool) {
	if c.queued || (!c.writing && len(b) <= batchMax) {
		l.queueOut(c, b, last)
		return
	}
	if c.writing { // behind what the socket has not taken yet (a 100 Continue, loopexpect.go)
		c.out = append(c.out, b...)
		c.rs.lastOut = last
		return
	}
	n, err := rawSend(c.fd, b)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.clientFailed(c)
		return
	}
	n = max(n, 0)
	if n < len(b) {
		c.out = append(c.out[:0], b[n:]...)
		c.rs.lastOut = last
		l.awaitWritable(c)
		return
	}
	if last {
		l.responseOut(c)
	}
}

// awaitWritable makes c.out wait for the client's socket to take it, and
// stops reading the upstream until the client catches up — once the
// request is sent: a connect or a head under way (behind a 100 Continue,
// loopexpect.go) goes on, and upstreamEvent stops at the response.
func (l *loop) awaitWritable(c *lconn) {
	c.writing = true
	l.events32(c)
	l.writeDeadline(c)
	if c.u != nil && c.u.headSent {
		l.upInterest(c.u, 0)
	}
}

// flush writes c.out; it reports whether all of it went.
func (l *loop) flush(c *lconn) bool {
	n, err := rawSend(c.fd, c.out)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.clientFailed(c)
		return false
	}
	if n < len(c.out) {
		if n > 0 {
			c.out = c.out[:copy(c.out, c.out[n:])]
			l.writeDeadline(c)
		}
		return false
	}
	c.out = c.out[:0]
	c.writing = false
	l.events32(c)
	c.deadline = 0
	if c.st == nil && len(c.in) > 0 {
		l.readDeadline(c) // a 100 Continue is out: the body is read under read_timeout
	}
	if c.rs.lastOut {
		c.rs.lastOut = false
		l.responseOut(c)
		return c.fd >= 0 && c.st == nil
	}
	if c.u != nil && c.u.ev == 0 { // stopped for the client (awaitWritable, upstreamEvent)
		l.upInterest(c.u, evIn)
		l.upDeadline(c.u, l.p.options().UpstreamReadTimeout)
	}
	return false
}

// clientFailed ends a connection whose client write failed (it went away):
// the request is abandoned as the goroutine core's server abandons it.
func (l *loop) clientFailed(c *lconn) {
	if c.st != nil {
		l.abandon(c)
	}
	l.closeConn(c)
}

// expired handles a connection whose deadline passed.
func (l *loop) expired(c *lconn) {
	switch {
	case c.st == nil && len(c.in) > 0:
		// A head left unfinished past read_timeout: fasthttp's answer
		// (handleBadRequest) and close.
		c.deadline = 0
		c.ctx.Response.Reset()
		c.ctx.Request.Reset()
		l.p.handleBadRequest(c.ctx, errReadTimeout)
		c.closeAfter = true
		c.fed = len(c.in)
		l.writeCtx(c)
	case c.st == nil && len(c.out) == 0:
		l.closeConn(c) // idle past idle_timeout
	case len(c.out) > 0:
		l.clientFailed(c) // the client stopped reading: write_timeout
	default:
		c.deadline = 0
	}
}

var errReadTimeout = &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}

// errTimeout is a timeout as net.Error reports one.
type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func (l *loop) deadlineIn(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return l.now + int64(d)
}

// idleDeadline: between requests, idle_timeout (read_timeout when zero,
// as fasthttp does).
func (l *loop) idleDeadline(c *lconn) {
	o := l.p.options()
	d := o.IdleTimeout
	if d <= 0 {
		d = o.ReadTimeout
	}
	c.deadline = l.deadlineIn(d)
}

func (l *loop) readDeadline(c *lconn) { c.deadline = l.deadlineIn(l.p.options().ReadTimeout) }

func (l *loop) writeDeadline(c *lconn) {
	c.deadline = l.deadlineIn(l.p.options().WriteTimeout)
}

// loopStub stands in for the client connection in the request's
// fasthttp.RequestCtx: the request path reads its address from it.
type loopStub struct{ c *lconn }

var errLoopStub = errors.New("loop core: the connection is the loop's")

func (s *loopStub) Read([]byte) (int, error)         { return 0, errLoopStub }
func (s *loopStub) Write([]byte) (int, error)        { return 0, errLoopStub }
func (s *loopStub) Close() error                     { return nil }
func (s *loopStub) LocalAddr() net.Addr              { return s.c.raddr }
func (s *loopStub) RemoteAddr() net.Addr             { return s.c.raddr }
func (s *loopStub) SetDeadline(time.Time) error      { return nil }
func (s *loopStub) SetReadDeadline(time.Time) error  { return nil }
func (s *loopStub) SetWriteDeadline(time.Time) error { return nil }
