package proxy

import (
	"github.com/cellgate/cellgate/accesslog"

	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	hdrUpgrade   = []byte("Upgrade")
	tokWebSocket = []byte("websocket")
	tokUpgrade   = []byte("upgrade")
	valUpgrade   = []byte("Upgrade")

	upgradeWebSocketLine = []byte("Upgrade: websocket\r\n")
	connUpgradeLine      = []byte("Connection: Upgrade\r\n")

	hdrRetryAfter = []byte("Retry-After")
	bodyDraining  = []byte("503 service unavailable: proxy is draining; reconnect\n")
	errDraining   = []byte("draining")
)

// handshakeHeadMax bounds the upstream's answer to a WebSocket handshake
// (status line and fields) and the body of a refusal, which the proxy reads
// whole before answering the client.
const (
	handshakeHeadMax = 16 << 10
	handshakeBodyMax = 64 << 10
)

// errUnaskedSwitch is an upstream answering 101 to a request that asked for
// no upgrade it could accept (Upgrade is removed from ordinary requests):
// passing that on would hand the client a connection the proxy no longer
// reads (h2c smuggling), so the client gets 502.
var errUnaskedSwitch = errors.New("upstream switched protocols unasked")

// errNotWebSocket is an upstream that answered a WebSocket handshake with
// 101 but switched to something else; the client gets 502.
var errNotWebSocket = errors.New("upstream switched protocols, but not to websocket")

// isWebSocketUpgrade reports whether req opens a WebSocket (RFC 6455 §4.1):
// an HTTP/1.1 GET without a body whose Upgrade field names websocket and
// whose Connection field names upgrade. Every other upgrade goes the
// ordinary way, where Upgrade and Connection are dropped as hop-by-hop
// fields — h2c above all: an upstream that accepted an h2c upgrade through
// the proxy would take HTTP/2 requests the proxy never sees ("h2c
// smuggling"; RFC 9113 §3.1 retired the upgrade). It runs for every GET, so
// it first looks for an Upgrade field in the raw header block, line by
// line, and walks the parsed fields only when there is one; it allocates
// nothing.
func isWebSocketUpgrade(req *fasthttp.RequestHeader) bool {
	// ContentLength: -1 is chunked, > 0 a body; 0 and -2 (none given) are
	// no body.
	if cl := req.ContentLength(); !req.IsGet() || !req.IsHTTP11() || cl > 0 || cl == -1 {
		return false
	}
	if raw := req.RawHeaders(); len(raw) > 0 && !hasFieldLine(raw, hdrUpgrade) {
		return false
	}
	var ws, upgrade bool
	for k, v := range req.All() {
		switch {
		case len(k) == len(hdrUpgrade) && bytes.EqualFold(k, hdrUpgrade):
			ws = ws || hasToken(v, tokWebSocket)
		case len(k) == len(hdrConnection) && bytes.EqualFold(k, hdrConnection):
			upgrade = upgrade || hasToken(v, tokUpgrade)
		}
	}
	return ws && upgrade
}

// hasFieldLine reports whether a line of the raw header block raw starts
// with name and a colon (case-insensitive). The front door has refused
// whitespace before the colon (RFC 9112 §5.1), so this finds every field
// the parser will see under that name.
func hasFieldLine(raw, name []byte) bool {
	for len(raw) > len(name) {
		if raw[len(name)] == ':' && bytes.EqualFold(raw[:len(name)], name) {
			return true
		}
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break
		}
		raw = raw[i+1:]
	}
	return false
}

// hasToken reports whether the comma-separated list v holds tok
// (case-insensitive, optional whitespace around elements: RFC 9110 §5.6.1).
func hasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var e []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			e, v = v[:i], v[i+1:]
		} else {
			e, v = v, nil
		}
		if e = bytes.Trim(e, " \t"); bytes.EqualFold(e, tok) {
			return true
		}
	}
	return false
}

// serveTunnel is the rest of the request path for a WebSocket handshake
// that handle has routed like any request (sticky key, pins: st.cell).
// The handshake goes upstream with header hygiene and with Connection and
// Upgrade generated anew (they are hop-by-hop), on a dedicated connection —
// never one from the keep-alive pool, which it would not return to. A 101
// hijacks the client connection into a tunnel; any other answer goes back
// as an ordinary response. Every handshake is recorded for the cell's SLIs
// like any request and counted in cellgate_tunnels_total.
func (p *Proxy) serveTunnel(ctx *fasthttp.RequestCtx, st *reqState, peer netip.Addr, cookie bool, ss *sessions) {
	st.acc.proto = accesslog.WS
	if p.draining.Load() {
		p.refuseTunnel(ctx, st)
		return
	}
	// The client's head byte for byte (reqhead.go), its Upgrade field kept
	// and "Connection: Upgrade" written anew.
	in := headInfo{peer: peer, trusted: st.set.keys.isTrusted(peer), tls: ctx.IsTLS(), tunnel: true}
	st.head = st.scrub.appendRequestHead(st.head[:0], &ctx.Request.Header, ctx.Request.Header.RawHeaders(), &in)
	t, c := p.shake(ctx, st)
	if c != causeNone {
		p.tunnels.handshake(st.cell.name, causes[c].status)
		p.fail(ctx, st, c)
		return
	}
	if t != nil && !p.tunnels.add(t) { // the proxy began draining meanwhile
		t.up.Close()
		t.ep.outstanding.Add(-1)
		p.refuseTunnel(ctx, st)
		return
	}
	resp := &ctx.Response
	st.status = resp.StatusCode()
	st.scrub.prepareResponse(&resp.Header, false)
	p.label(ctx, st, ss, cookie)
	p.appendOwnFields(ctx, st, cookie)
	p.tunnels.handshake(st.cell.name, st.status)
	if t == nil {
		st.armHead()
		st.finish(st.status, false) // an ordinary answer: the upstream refused
		return
	}
	resp.Header.SetBytesKV(hdrUpgrade, tokWebSocket)
	resp.Header.SetBytesKV(hdrConnection, valUpgrade)
	if len(st.upHead.buf) > 0 {
		// The upstream's 101 head as sent (respwrite.go), its hop-by-hop
		// Upgrade and Connection written anew.
		t.head = st.upHead.appendFinal(nil, &framing{conn: [2][]byte{upgradeWebSocketLine, connUpgradeLine}})
	} else {
		t.head = resp.Header.AppendBytes(nil)
	}
	st.finish(st.status, false)
	// The front door must stop reading the client's bytes as HTTP
	// requests; the response is written by the tunnel itself, so fasthttp
	// hands the connection over whatever it thinks of the exchange.
	passThrough(ctx.Conn())
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(t.serve)
}

// refuseTunnel answers a handshake that arrives while the proxy drains:
// 503 and a closed connection, so the client reconnects — to this
// proxy's successor, in a handover.
func (p *Proxy) refuseTunnel(ctx *fasthttp.RequestCtx, st *reqState) {
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusServiceUnavailable)
	resp.Header.SetContentTypeBytes(ctTextPlain)
	resp.Header.SetBytesKV(hdrCellgateError, errDraining)
	resp.Header.SetBytesKV(hdrRetryAfter, []byte("0"))
	resp.SetBodyRaw(bodyDraining)
	ctx.SetConnectionClose()
	if st.cell != nil {
		p.tunnels.handshake(st.cell.name, fasthttp.StatusServiceUnavailable)
	}
	st.finish(fasthttp.StatusServiceUnavailable, true)
}

// shake dials an endpoint of st.cell (once more on another endpoint if
// the dial fails: nothing was sent), sends the handshake and reads the
// answer's head into ctx.Response. On 101 it returns the tunnel, holding
// the connection and an outstanding count on the endpoint; on any other
// answer it reads that answer's body and closes the connection.
func (p *Proxy) shake(ctx *fasthttp.RequestCtx, st *reqState) (*tunnel, cause) {
	var tried *endpoint
	for {
		ep := st.cell.pickEndpoint(p.rand(), tried, p.health.nowNano)
		if ep == nil {
			if tried != nil {
				return nil, st.lastCause
			}
			return nil, causeNoEndpoint
		}
		conn, err := p.dial(ep.addr)
		if err != nil {
			st.lastCause = classify(err, false)
			p.noteFailure(st.cell, ep, st.lastCause, false)
			if tried != nil {
				return nil, st.lastCause
			}
			tried = ep
			continue
		}
		st.ep = ep
		ep.outstanding.Add(1) // finish gives it back; a tunnel takes its own
		t, err := p.exchange(ctx, st, conn)
		if err != nil {
			conn.Close()
			c := classify(err, true)
			p.noteFailure(st.cell, ep, c, false)
			return nil, c
		}
		if ctx.Response.StatusCode() >= 500 {
			p.noteFailure(st.cell, ep, causeNone, false)
		} else {
			p.health.success(ep)
		}
		return t, causeNone
	}
}

// exchange writes the handshake on conn and reads the answer. See shake.
func (p *Proxy) exchange(ctx *fasthttp.RequestCtx, st *reqState, conn net.Conn) (*tunnel, error) {
	opts := &st.set.opts
	if opts.UpstreamWriteTimeout > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(opts.UpstreamWriteTimeout))
	}
	if _, err := conn.Write(st.head); err != nil {
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	if opts.UpstreamReadTimeout > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(opts.UpstreamReadTimeout))
	}
	br := bufio.NewReaderSize(conn, handshakeHeadMax)
	resp := &ctx.Response
	for interim := 0; ; interim++ {
		_, raw, err := peekHead(br)
		if err != nil {
			return nil, fmt.Errorf("read handshake answer: %w", err)
		}
		st.upHead.build(raw, &st.scrub, opts.ResponseHeaders)
		if err := readHeadInto(&resp.Header, br, raw); err != nil {
			return nil, fmt.Errorf("read handshake answer: %w", err)
		}
		if sc := resp.StatusCode(); sc >= 200 || sc == fasthttp.StatusSwitchingProtocols {
			break
		}
		if interim == 8 {
			return nil, errors.New("read handshake answer: too many interim responses")
		}
	}
	st.ttfb = time.Now()
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		if err := resp.ReadBody(br, handshakeBodyMax); err != nil {
			return nil, fmt.Errorf("read handshake refusal: %w", err)
		}
		conn.Close()
		return nil, nil
	}
	if !isWebSocketAnswer(&resp.Header) {
		return nil, errNotWebSocket
	}
	_ = conn.SetDeadline(time.Time{})
	t := &tunnel{
		set: p.tunnels, cell: st.cell.name, ep: st.ep, up: conn,
		writeTimeout: opts.WriteTimeout, upWriteTimeout: opts.UpstreamWriteTimeout,
	}
	if n := br.Buffered(); n > 0 {
		t.early, _ = br.Peek(n)
		t.early = bytes.Clone(t.early)
	}
	st.ep.outstanding.Add(1) // the tunnel's own, until it ends
	return t, nil
}

// isWebSocketAnswer reports whether a 101's Upgrade field names websocket.
func isWebSocketAnswer(h *fasthttp.ResponseHeader) bool {
	for k, v := range h.All() {
		if len(k) == len(hdrUpgrade) && bytes.EqualFold(k, hdrUpgrade) && hasToken(v, tokWebSocket) {
			return true
		}
	}
	return false
}

// passThrough tells the connection wrapper that validates the client's
// bytes as HTTP requests (the front door) that what follows the current
// request is another protocol. It looks through the wrappers that expose
// NetConn (the connection tracker, plain or TLS); connections without a
// front door (tests serving a bare listener) need nothing.
func passThrough(c net.Conn) {
	for {
		if pt, ok := c.(interface{ PassThrough() }); ok {
			pt.PassThrough()
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = u.NetConn()
	}
}
