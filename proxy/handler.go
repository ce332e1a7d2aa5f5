package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/flags"
)

// reqState is the per-request working set, pooled so the request path does
// not allocate: header scratch, the upstream connection, and — for a
// streamed response — the state the body stream needs after the handler
// has returned. It is the streamed body itself (Read, Close).
type reqState struct {
	p *Proxy
	// spare is the loop's free list this state goes back to on release
	// (loopconn.go: the loop's own requests, all on its goroutine); nil:
	// the proxy's pool.
	spare  *[]*reqState
	set    *settings // the settings this request started with
	scrub  scrub
	keyBuf []byte
	pinBuf []byte // pin cookie scratch
	// overrideBuf holds a verified override cookie's dictionary, which
	// override aliases.
	overrideBuf []byte

	// pinCookie asks for a pin cookie on the response: the session is
	// pinned, to st.cell since pinAssigned, and was seen at pinNow (ns).
	pinCookie   bool
	pinHash     uint64
	pinAssigned int64
	pinNow      int64

	cell  *cell
	ep    *endpoint
	start time.Time
	ttfb  time.Time
	// end is when the response was out, when the loop core knows it from
	// its batch clock (loopclock.go); zero: finish reads the clock.
	end    time.Time
	status int
	// lastCause is the failure of the previous attempt, answered when a
	// retry finds no other endpoint.
	lastCause cause
	client    net.Conn // the client connection, for per-write deadlines

	// head is the request head sent upstream (reqhead.go) — on the loop
	// core followed by the request's buffered body (loopbody.go); bodyLen the
	// request body's framing (fasthttp: ≥0 Content-Length, -1 chunked, -2
	// none) and bodyRead how much of it was read from the client; upBuf
	// carries it (upload.go).
	head     []byte
	bodyLen  int64
	bodyRead int64
	upBuf    []byte

	// upHead is the client's response head, written from the upstream's
	// (respwrite.go) and handed to the client connection (headswap.go).
	upHead respHead

	conn      upstreamConn
	upResp    fasthttp.Response // decodes a streamed body
	body      interface{ Read([]byte) (int, error) }
	chunks    chunkReader              // body of a chunked response (chunked.go)
	lim       io.LimitedReader         // body of a known-length response: the upstream reader, limited
	slice     io.LimitedReader         // one splice slice (splice.go), kept here so it does not escape per call
	resp      *fasthttp.ResponseHeader // the client's response, for trailers
	upFraming headFraming              // the upstream head's framing fields
	upLen     int64                    // streamed body's length: ≥0, -1 chunked, -2 until close
	upRead    int64                    // streamed body bytes read so far
	upErr     error                    // the streamed body failed upstream
	streaming bool
	reusable  bool
	upClose   bool
	gotHead   bool // the response head arrived (roundTrip's lost rule)
	// respByte is set once any byte of a response (an interim one, part
	// of a head) arrived: the request may have been answered, so it is
	// never repeated.
	respByte bool
	// lost is set when the last failed attempt lost the request: the
	// connection was closed or reset before any response byte and no body
	// byte was read (roundTrip's lost): cellhealth.go's retry of a lost
	// idempotent request on the failover cell.
	lost bool
	eof  bool

	// flagSet is the flag snapshot the request was assigned from (nil: no
	// flags), choices its variants, flagsVal the X-Cellgate-Flags value and
	// exposed the flags the response marked in X-Cellgate-Exposed.
	flagSet  *flags.Set
	choices  flags.Choices
	flagsVal []byte
	exposed  uint64
	// overridden is set when a trusted proxy's X-Cellgate-Override
	// applies (override says what); the request is then not recorded.
	overridden bool
	override   flags.Override
	// metricProto is the request's protocol label for the metrics: "" for
	// HTTP/1.1, ProtocolH2 or ProtocolGRPC (protocol.go).
	metricProto string

	// failedOver is set when the request left its own (down) cell for its
	// failover cell; it fails over at most once (cellhealth.go).
	failedOver bool
	// upstreamCancelled is set when an HTTP/2 upstream reset the stream
	// with CANCEL (h2upstream.go).
	upstreamCancelled bool
	// upReused is set when the attempt's upstream connection came from the
	// keep-alive pool (it had carried a response before): a loss on it
	// may be the upstream's close of an idle connection (forward).
	upReused bool

	// ctx is the request being served (for the access log, read in
	// finish); peer its client address; acc what the access log needs
	// beyond the above (accesslog.go).
	ctx  *fasthttp.RequestCtx
	peer netip.Addr
	acc  accessInfo
	// peerText is peer as text, written into X-Forwarded-For, Forwarded
	// and the "ip" sticky key: route sets both (in peerBuf) unless peerSet
	// says the loop core did, from its connection's (loopconn.go).
	peerText []byte
	peerBuf  []byte
	peerSet  bool
	// trace is what [tracing] generate adds to this request (trace.go).
	trace traceHead
	// failedEp is the endpoint of the last failed attempt: if its active
	// check has failed meanwhile, the cell lost it (cellhealth.go).
	failedEp *endpoint
}

// maxSpareStates bounds a loop's free list of reqStates: as many as a
// loop usually has requests under way; past it they go to the pool, whose
// spares the collector may take.
const maxSpareStates = 256

// maxKeptHead is the largest head buffer a pooled reqState keeps.
const maxKeptHead = 16 << 10

func (p *Proxy) acquireState() *reqState { return p.states.Get().(*reqState) }

// release clears per-request fields and returns st to the pool.
func (st *reqState) release() {
	p := st.p
	st.cell, st.ep, st.client, st.body, st.resp, st.upErr, st.set = nil, nil, nil, nil, nil, nil, nil
	st.ttfb, st.end, st.status, st.lastCause = time.Time{}, time.Time{}, 0, causeNone
	st.streaming, st.reusable, st.upClose, st.eof = false, false, false, false
	st.bodyRead, st.upRead, st.upFraming = 0, 0, 0
	st.lim = io.LimitedReader{}
	st.chunks.reset(nil, nil)
	st.upHead.reset()
	if cap(st.head) > maxKeptHead {
		st.head = nil // one huge head must not pin its buffer in the pool
	}
	st.pinCookie, st.failedOver, st.gotHead, st.upstreamCancelled = false, false, false, false
	st.respByte, st.lost = false, false
	st.ctx, st.acc = nil, accessInfo{}
	st.peerText, st.peerSet = nil, false
	st.trace.addParent, st.trace.addReqID, st.trace.export = false, false, false
	st.flagSet, st.flagsVal, st.exposed, st.overridden = nil, st.flagsVal[:0], 0, false
	st.failedEp, st.upReused = nil, false
	st.metricProto = ""
	if s := st.spare; s != nil && len(*s) < maxSpareStates {
		*s = append(*s, st)
		return
	}
	st.spare = nil
	p.states.Put(st)
}

// idempotent reports whether a method may be sent twice (RFC 9110 §9.2.2).
func idempotent(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodTrace, fasthttp.MethodPut, fasthttp.MethodDelete:
		return true
	}
	return false
}

// handle is the request path, one stage per step:
// key → cell → header hygiene → endpoint → forward (retry once) → label
// → record. Streamed responses finish in reqState.Close instead.
func (p *Proxy) handle(ctx *fasthttp.RequestCtx) {
	if p.draining.Load() {
		ctx.SetConnectionClose() // see Shutdown
	}
	st := p.acquireState()
	st.start = ctx.Time()
	st.client = ctx.Conn()
	snap := p.snap.Load()
	rt, ok := p.route(ctx, st, snap)
	if !ok {
		return // answered (OFREP) or failed (no cell)
	}
	if isH2Stream(ctx) {
		if isGRPC(&ctx.Request.Header) {
			st.metricProto = ProtocolGRPC
		} else {
			st.metricProto = ProtocolH2
			st.cell.stats.h2.Add(1) // h1 is served less h2 and gRPC (protocolCounts)
		}
	}

	// A WebSocket handshake, routed like any request, leaves here for its
	// own dedicated upstream connection and a tunnel (tunnelshake.go).
	if isWebSocketUpgrade(&ctx.Request.Header) {
		p.serveTunnel(ctx, st, st.peer, rt.cookie, snap.sessions)
		return
	}

	// A body known to be too large is refused before any byte of it is
	// read (ExpectHandler refuses it before 100 Continue, too).
	st.bodyLen = int64(ctx.Request.Header.ContentLength())
	if max := st.set.opts.MaxRequestBody; max > 0 && st.bodyLen > int64(max) {
		p.fail(ctx, st, causeTooLarge)
		return
	}

	// The upstream head, then endpoint and forward; at most one retry, on
	// another endpoint, only if nothing was sent (a refused dial), or the
	// request is idempotent, bodiless so far, and the upstream closed or
	// reset the connection before any response byte (roundTrip's lost).
	in := st.headInfo(ctx)
	if st.cell.proto != ProtoHTTP1 || isGRPC(&ctx.Request.Header) {
		p.forwardH2(ctx, st, &in, snap.sessions, rt.cookie) // h2upstream.go
		return
	}
	st.head = st.scrub.appendRequestHead(st.head[:0], &ctx.Request.Header, ctx.Request.Header.RawHeaders(), &in)
	if c := st.forwardFailover(ctx, snap, rt.keyHash, rt.idx); c != causeNone {
		p.fail(ctx, st, c)
		return
	}

	// Label the response.
	st.status = ctx.Response.StatusCode()
	st.scrub.prepareResponse(&ctx.Response.Header, st.upFraming&headHTTP10 != 0)
	st.noteExposed()
	p.label(ctx, st, snap.sessions, rt.cookie)
	p.appendOwnFields(ctx, st, rt.cookie)
	switch {
	case !st.streaming:
		st.armHead()
		st.finish(st.status, false)
	case st.upLen < 0 && !ctx.Request.Header.IsHTTP11():
		st.sendCloseDelimited(ctx)
	default:
		st.armHead()
		ctx.Response.ImmediateHeaderFlush = true
		ctx.Response.SetBodyStream(st, int(max(st.upLen, -1)))
	}
}

// routed is where route sent a request: the key's hash, the cell index the
// table (or a pin) chose before any failover, and whether a sticky cookie
// was generated for it.
type routed struct {
	keyHash uint64
	idx     int
	cookie  bool
}

// route is the request path's first stages, shared by both server cores
// (the loop core calls it from its event loop: loopconn.go): key → OFREP →
// cell (pins, override, failover of a down cell) → flags. It fills st
// (settings, peer, key for the access log, cell, flags) and returns false
// when it answered the request itself (OFREP, or no cell: st is finished).
func (p *Proxy) route(ctx *fasthttp.RequestCtx, st *reqState, snap *snapshot) (routed, bool) {
	set := p.settings()
	st.set = set
	if !st.peerSet {
		st.setPeer(peerAddr(ctx))
	}
	peer := st.peer
	st.ctx = ctx

	// Key: first present sticky source; otherwise random (or a new cookie).
	var rt routed
	var key []byte
	key, _, st.keyBuf = set.keys.extract(&ctx.Request, peer, st.peerText, st.keyBuf)
	switch {
	case key != nil:
		rt.keyHash = snap.table.Hash(key)
	case set.opts.SetCookie:
		st.keyBuf = appendHex(st.keyBuf[:0], p.rand())
		rt.keyHash, rt.cookie = snap.table.Hash(st.keyBuf), true
	default:
		rt.keyHash = p.rand()
	}
	st.acc.key = key
	if rt.cookie {
		st.acc.key = st.keyBuf
	}

	if set.opts.OFREPPrefix != "" && p.isOFREP(ctx, set.opts.OFREPPrefix) {
		p.serveOFREP(ctx, st, key, rt.cookie)
		return rt, false
	}

	// Cell: with pins on, a keyed session may be held on the cell that
	// served it while a promotion moves its key (pins.go).
	if snap.pins != nil && (key != nil || rt.cookie) {
		rt.idx = p.routePinned(ctx, st, snap, rt.keyHash)
	} else {
		rt.idx = snap.table.Pick(rt.keyHash)
	}
	if rt.idx < 0 {
		p.fail(ctx, st, causeNoCell)
		return rt, false
	}
	if p.readOverride(ctx, st, peer) && st.override.Cell != nil { // trusted proxies or a signed cookie (proxy/flags.go)
		if i := snap.table.IndexBytes(st.override.Cell); i >= 0 {
			rt.idx = i
		}
	}
	if snap.cells[rt.idx].state.down.Load() { // rare: one atomic load otherwise
		rt.idx = p.routeAround(st, snap, rt.keyHash, rt.idx)
	}
	st.cell = snap.cells[rt.idx]
	st.cell.served.Add(1)
	p.assignFlags(st, rt.keyHash, key != nil || rt.cookie)
	return rt, true
}

// setPeer sets the client's address and its text (peerBuf holds it).
func (st *reqState) setPeer(a netip.Addr) {
	st.peer = a
	st.peerBuf = appendPeer(st.peerBuf[:0], a)
	st.peerText = st.peerBuf
}

// appendPeer appends a as text: nothing when it is not an IP address.
func appendPeer(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	return a.AppendTo(dst)
}

// headInfo is what the upstream head needs beyond the client's bytes
// (reqhead.go), for a routed request.
func (st *reqState) headInfo(ctx *fasthttp.RequestCtx) headInfo {
	in := headInfo{peer: st.peer, peerText: st.peerText, trusted: st.set.keys.isTrusted(st.peer), tls: ctx.IsTLS(), chunked: st.bodyLen == -1, flags: st.flagsVal}
	if t := &st.set.opts.Tracing; t.Generate {
		in.trace = st.startTrace(&ctx.Request.Header, t)
	}
	if len(ctx.Request.Header.Host()) == 0 && len(st.cell.endpoints) > 0 {
		in.host = st.cell.endpoints[0].addr // HTTP/1.0 without Host
	}
	return in
}

// appendOwnFields ends the client's response head (st.upHead) with
// cellgate's own fields, as label set them on the parsed header.
func (p *Proxy) appendOwnFields(ctx *fasthttp.RequestCtx, st *reqState, cookie bool) {
	h := &ctx.Response.Header
	var cell, version, sticky, pin []byte
	if st.set.opts.ResponseHeaders {
		cell, version = st.cell.nameB, st.cell.versionB
	}
	if cookie {
		sticky = h.PeekCookie(st.set.opts.CookieName)
	}
	if st.pinCookie {
		pin = h.PeekCookie(p.opts.PinCookieName)
	}
	st.upHead.appendOwn(st.upFraming&headHTTP10 != 0, cell, version, sticky, pin)
}

// armHead hands the client's response head to the client connection, which
// writes it in place of the one the server serialises (headswap.go). A
// head peekHead could not see whole, or a connection that is not tracked,
// leaves the server's head.
func (st *reqState) armHead() {
	tc := swapConn(st.client)
	if tc == nil || len(st.upHead.buf) == 0 {
		return
	}
	hs := tc.t.swaps.get()
	hs.head, st.upHead = st.upHead, hs.head
	tc.armHeadSwap(hs, st.status)
}

// label adds cellgate's own fields to a proxied response: the cell and
// version, a generated sticky cookie, a session pin cookie. An HTTP/1.1
// client gets the head written from the upstream's bytes (respwrite.go),
// not from ctx.Response.Header: a field added here must be added to that
// head too (appendOwnFields), or only HTTP/2 clients see it.
func (p *Proxy) label(ctx *fasthttp.RequestCtx, st *reqState, ss *sessions, cookie bool) {
	if st.set.opts.ResponseHeaders {
		ctx.Response.Header.SetBytesKV(hdrCell, st.cell.nameB)
		ctx.Response.Header.SetBytesKV(hdrVersion, st.cell.versionB)
	}
	if cookie {
		p.setCookie(ctx, st.set.opts.CookieName, st.keyBuf)
	}
	if st.pinCookie {
		p.setPinCookie(ctx, st, ss)
	}
}

// forward picks an endpoint, sends the request and reads the response,
// retrying once on another endpoint when that is safe. It returns the
// cause of failure, or causeNone.
func (st *reqState) forward(ctx *fasthttp.RequestCtx) cause {
	p := st.p
	var tried, again *endpoint
	var fresh bool // the stale-connection retry was spent
	st.failedEp, st.lost = nil, false
	for attempt := 0; ; attempt++ {
		st.acc.retried = attempt > 0 || fresh
		ep := again
		if ep == nil {
			ep = st.cell.pickEndpoint(p.rand(), tried, p.health.nowNano)
		}
		again = nil
		if ep == nil {
			if tried != nil {
				return st.lastCause
			}
			return causeNoEndpoint
		}
		st.ep = ep
		ep.outstanding.Add(1)
		sent, lost, err := st.roundTrip(ctx, ep)
		if err == nil {
			st.attemptDone(ep, ctx.Response.StatusCode())
			return causeNone
		}
		ep.outstanding.Add(-1)
		st.ep, st.acc.tried = nil, ep.addr
		var cbe *clientBodyError
		if errors.As(err, &cbe) {
			return cbe.c // the client's doing: no retry, no mark on the endpoint
		}
		c := classify(err, sent)
		if st.staleRepeat(lost, fresh, ctx.Method()) {
			// The endpoint's idle connections are as old: closed, so
			// the repeat dials.
			ep.client.CloseIdleConnections()
			again, fresh = ep, true
			attempt--
			continue
		}
		if !st.attemptFailed(ep, c, attempt, sent, lost, ctx.Method()) {
			return c
		}
		tried = ep
	}
}

// staleRepeat reports whether a failed attempt is repeated once on a fresh
// connection to the same endpoint before the retry rule (attemptFailed)
// sees it: the request was lost (no response byte, no body byte read) on a
// pooled keep-alive connection (st.upReused) — one the upstream closed
// while it sat idle (its keep-alive timeout, a restart), or just as the
// request went out — it is idempotent, and no repeat was spent (fresh).
// Go's Transport and HAProxy do the same. The repeat is no evidence
// against the endpoint and does not spend the retry: the ordinary rule
// applies to it. Both cores decide by it (forward; the loop core's
// attemptFailed, loopup.go), each closing its idle connections to the
// endpoint so the repeat dials.
func (st *reqState) staleRepeat(lost, fresh bool, method []byte) bool {
	return lost && st.upReused && !fresh && idempotent(method)
}

// attemptFailed settles a failed attempt on ep (cause c) — passive health,
// the request's last failure — and reports whether forward's rule allows
// another attempt: the first attempt only, and only if nothing was sent or
// an idempotent request was lost (roundTrip). Both cores decide by it.
func (st *reqState) attemptFailed(ep *endpoint, c cause, attempt int, sent, lost bool, method []byte) bool {
	if c != causeBusy {
		st.p.noteFailure(st.cell, ep, c, !st.gotHead)
	}
	st.lastCause, st.failedEp, st.lost = c, ep, lost
	return attempt == 0 && (!sent || (lost && idempotent(method)))
}

// attemptDone settles a successful attempt: a 5xx counts toward ejection,
// anything else is a success.
func (st *reqState) attemptDone(ep *endpoint, status int) {
	if status >= 500 {
		st.p.noteFailure(st.cell, ep, causeNone, false)
	} else {
		st.p.health.success(ep)
	}
}

// noteFailure feeds passive health: a 5xx (causeNone) or a failure after
// the request may have been read counts toward eject_after; a connection
// failure takes the endpoint out at once — refused or timed-out connects,
// and a connection reset or closed before any response byte when a fresh
// dial confirms nobody listens any more (an idle keep-alive connection
// closed under us looks the same, so the reset alone is not evidence). An
// ejection is logged and re-derives whether the cell is down.
func (p *Proxy) noteFailure(c *cell, ep *endpoint, why cause, headless bool) {
	var ejected bool
	dead := why == causeRefused || why == causeConnectTimeout || (why == causeReset && headless && p.unreachable(ep))
	if dead {
		ejected = p.health.connFailure(ep)
	} else {
		ejected = p.health.failure(c, ep)
	}
	if !ejected {
		return
	}
	if dead {
		// The endpoint is gone: so are its pooled connections, which
		// would otherwise fail the first requests after it comes back.
		ep.closeIdle()
		c.stats.deaths.Add(1)
		p.startReadmit(ep)
	}
	p.log.Warn("endpoint ejected", "cell", c.name, "endpoint", ep.addr, "ejections", ep.ejections.Load())
	if c.refresh(p.health.nowNano()) {
		p.log.Warn("cell down: no endpoint in rotation", "cell", c.name)
	}
}

// fail answers with the cause's error response and finishes the request.
func (p *Proxy) fail(ctx *fasthttp.RequestCtx, st *reqState, c cause) {
	writeError(ctx, c)
	st.acc.cause = c
	if st.cell != nil && isGRPC(&ctx.Request.Header) {
		st.cell.stats.grpc.count(grpcCauses[c].code, true)
	}
	if st.cell != nil && st.set.opts.ResponseHeaders {
		ctx.Response.Header.SetBytesKV(hdrCell, st.cell.nameB)
		ctx.Response.Header.SetBytesKV(hdrVersion, st.cell.versionB)
	}
	if causes[c].client {
		// The rest of the client's body is unread or unreadable: the
		// connection cannot carry another request.
		ctx.SetConnectionClose()
	}
	st.finish(causes[c].status, !causes[c].client)
}

// finish records the request for its cell, settles the endpoint's
// outstanding count and returns st to the pool.
func (st *reqState) finish(status int, proxyErr bool) {
	if st.ep != nil {
		st.ep.outstanding.Add(-1)
	}
	end := st.end
	if st.overridden {
		st.p.overrides.Add(1) // counted apart: not a random sample
	} else if c := st.cell; c != nil && (c.rec != nil || st.flagSet != nil) {
		if end.IsZero() {
			end = time.Now()
		}
		var ttfb time.Duration
		if !st.ttfb.IsZero() {
			ttfb = st.ttfb.Sub(st.start)
		}
		if c.rec != nil {
			st.record(c.rec, end, status, proxyErr, end.Sub(st.start), ttfb)
		}
		if st.flagSet != nil { // each variant's cohort (proxy/flags.go)
			st.flagSet.Record(&st.choices, st.exposed, end, status, proxyErr, end.Sub(st.start), ttfb)
		}
	}
	if al := st.p.hooks.AccessLog; al.On() {
		if end.IsZero() {
			end = time.Now()
		}
		st.logAccess(al, status, end)
	}
	if st.trace.export {
		if end.IsZero() {
			end = time.Now()
		}
		st.exportSpan(st.p.hooks.Spans, status, end)
	}
	st.release()
}

// peerAddr is the client connection's remote IP (unmapped), or invalid for
// non-IP transports.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// appendHex appends v as 16 lowercase hex digits.
func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[v>>uint(i)&0xf])
	}
	return b
}

// setCookie returns a generated sticky key to the client so its next
// requests hash the same way.
func (p *Proxy) setCookie(ctx *fasthttp.RequestCtx, name string, value []byte) {
	c := fasthttp.AcquireCookie()
	c.SetKey(name)
	c.SetValueBytes(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	ctx.Response.Header.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}
