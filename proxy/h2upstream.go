package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cellgate/cellgate/internal/ows"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// Cells speak HTTP/1.1 to their endpoints unless CellSpec.Protocol says
// "h2c" (HTTP/2 with prior knowledge, RFC 9113 §3.3) or "h2" (HTTP/2 over
// TLS, ALPN). gRPC needs one of those: its trailers and full-duplex streams
// do not survive HTTP/1.1. An HTTP/2 cell's endpoint keeps an
// http2.Transport, which multiplexes streams over its connections and opens
// another when a connection's stream limit is reached; passive health,
// ejection, the one retry when nothing was sent, and draining work as for
// the HTTP/1.1 pool.
//
// Translation toward an HTTP/2 upstream (docs/CONTRACT.md): the request
// head is the one HTTP/1.1 upstreams get (reqhead.go: hop-by-hop fields
// gone, forwarding fields set), then Host becomes :authority, names go
// lowercase on the wire (RFC 9113 §8.2) and "te: trailers" is kept when
// the client sent it (gRPC requires it; toward HTTP/1.1 TE is hop-by-hop).
// Toward an HTTP/1.1 client the upstream's trailers follow a chunked body.

// Upstream protocols (CellSpec.Protocol).
const (
	ProtoHTTP1 = "http1"
	ProtoH2C   = "h2c"
	ProtoH2    = "h2"
)

// UpstreamTLS is how a cell's endpoints are reached over TLS ([cell.tls]).
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the CAs that sign the endpoints'
	// certificates. Empty: the system roots.
	CAFile string
	// ServerName is the name the certificates must carry (and the SNI sent).
	// Empty: the endpoint's host.
	ServerName string
	// CertFile and KeyFile are the client certificate for mutual TLS. Both
	// or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any certificate: for tests only, and the
	// proxy logs a warning for every cell that sets it.
	InsecureSkipVerify bool
}

// config builds the tls.Config, reading the files.
func (u *UpstreamTLS) config(h2 bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.ServerName, InsecureSkipVerify: u.InsecureSkipVerify} //nolint:gosec // asked for, and logged
	if h2 {
		c.NextProtos = []string{http2.NextProtoTLS}
	}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate", u.CAFile)
		}
	}
	if (u.CertFile == "") != (u.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if u.CertFile != "" {
		kp, err := tls.LoadX509KeyPair(u.CertFile, u.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// validateProtocol reports a cell's protocol and TLS problems.
func validateProtocol(c *CellSpec) error {
	switch c.Protocol {
	case "", ProtoHTTP1, ProtoH2C, ProtoH2:
	default:
		return fmt.Errorf("protocol %q: want http1, h2c or h2", c.Protocol)
	}
	if c.Protocol == ProtoH2C && c.TLS != nil {
		return errors.New("protocol h2c is HTTP/2 without TLS; use h2 with [cell.tls]")
	}
	if c.TLS != nil {
		if _, err := c.TLS.config(false); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// endpointKey names an endpoint in the registry: a reload keeps an
// endpoint (its connections, its health) only while its cell, address,
// protocol and TLS settings stay.
func endpointKey(sp *CellSpec, addr string) string {
	k := sp.Name + "\x00" + addr
	if sp.Protocol != "" && sp.Protocol != ProtoHTTP1 {
		k += "\x00" + sp.Protocol
	}
	if sp.TLS != nil {
		k += fmt.Sprintf("\x00%+v", *sp.TLS)
	}
	return k
}

// newEndpointFor builds an endpoint of cell sp: the HTTP/1.1 pool always
// (health checks use it), and for HTTP/2 cells the transport requests go
// out on; TLS settings apply to either.
func (p *Proxy) newEndpointFor(sp *CellSpec, addr string) *endpoint {
	e := newEndpoint(addr, p.options(), p.dialPooled)
	h2 := sp.Protocol == ProtoH2 || sp.Protocol == ProtoH2C
	var tc *tls.Config
	if sp.TLS != nil {
		var err error
		if tc, err = sp.TLS.config(h2); err != nil { // validated: only a file changed since
			p.log.Error("cell tls", "cell", sp.Name, "err", err)
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if sp.TLS.InsecureSkipVerify {
			p.log.Warn("cell tls: insecure_skip_verify is on: the endpoints' certificates are not checked (tests only)", "cell", sp.Name, "endpoint", addr)
		}
		if !h2 {
			e.client.IsTLS, e.client.TLSConfig = true, tc
		}
	}
	if h2 {
		e.h2 = p.newH2Transport(sp.Protocol, tc, &e.h2Open)
	}
	return e
}

// keepProtocol gives a renewed endpoint n (renewPoolsLocked) what old
// speaks: TLS to an HTTP/1.1 endpoint, or an HTTP/2 transport of the same
// protocol and TLS settings built with the current options. Without it an
// HTTP/2 endpoint would be left with no transport.
func (p *Proxy) keepProtocol(n, old *endpoint) {
	n.client.IsTLS, n.client.TLSConfig = old.client.IsTLS, old.client.TLSConfig
	if old.h2 == nil {
		return
	}
	proto := ProtoH2
	if old.h2.AllowHTTP {
		proto = ProtoH2C
	}
	n.h2 = p.newH2Transport(proto, old.h2.TLSClientConfig, &n.h2Open)
}

// newH2Transport is an HTTP/2 client for one endpoint; open counts its
// connections against the cap (h2conns.go).
func (p *Proxy) newH2Transport(proto string, tc *tls.Config, open *atomic.Int64) *http2.Transport {
	o := p.options()
	t := &http2.Transport{
		ReadIdleTimeout:  h2PingAfter, // a dead connection is found by PING, not by the next request
		PingTimeout:      h2PingTimeout,
		IdleConnTimeout:  o.MaxIdleConnDuration,
		WriteByteTimeout: o.UpstreamWriteTimeout,
	}
	if proto == ProtoH2C {
		t.AllowHTTP = true
		t.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return p.dialCounted(ctx, addr, open)
		}
		return t
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{http2.NextProtoTLS}}
	}
	t.TLSClientConfig = tc
	t.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
		raw, err := p.dialCounted(ctx, addr, open)
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, cfg)
		if err := c.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("tls handshake: %w", err)}
		}
		return c, nil
	}
	return t
}

// dialContext dials an endpoint with the current connect timeout.
func (p *Proxy) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: p.options().ConnectTimeout}
	return d.DialContext(ctx, "tcp", addr)
}

// forwardH2 sends a request routed to an HTTP/2 cell, or answers a gRPC
// call routed to an HTTP/1.1 cell with a clear gRPC error. The response
// (head now, body and trailers as they stream) goes into ctx.
func (p *Proxy) forwardH2(ctx *fasthttp.RequestCtx, st *reqState, in *headInfo, ss *sessions, cookie bool) {
	if st.cell.proto == ProtoHTTP1 {
		p.fail(ctx, st, causeNotGRPCCell)
		return
	}
	st.head = st.scrub.appendRequestHead(st.head[:0], &ctx.Request.Header, ctx.Request.Header.RawHeaders(), in)
	req, err := h2Request(st.head, ctx)
	if err != nil {
		p.fail(ctx, st, causeClientBody)
		return
	}
	parent := streamContext(ctx)
	base := parent
	if base == nil {
		base = context.Background()
	}
	var cancel context.CancelFunc
	d, hasTimeout := parseGRPCTimeout(peekFold(&ctx.Request.Header, "grpc-timeout", hdrGRPCTimeout))
	hasTimeout = hasTimeout && isGRPC(&ctx.Request.Header)
	if hasTimeout {
		base, cancel = context.WithTimeout(base, d) // grpc-timeout bounds our wait too; the field goes on unchanged
	} else if t := st.set.opts.UpstreamReadTimeout; t > 0 && !isGRPC(&ctx.Request.Header) {
		base, cancel = context.WithCancel(base)
		stop := time.AfterFunc(t, cancel) // bounds waiting for the head only
		defer stop.Stop()
	} else {
		base, cancel = context.WithCancel(base)
	}
	resp, c := st.roundTripH2(req.WithContext(base))
	if c != causeNone {
		cancel()
		switch {
		case parent != nil && parent.Err() != nil:
			c = causeClientGone // the client reset the stream: not the cell's doing
		case base.Err() == context.DeadlineExceeded, hasTimeout && st.upstreamCancelled:
			// Ours ran out, or the upstream's copy of the same
			// grpc-timeout did first (grpc-go resets with CANCEL then).
			c = causeTimeout
		}
		p.fail(ctx, st, c)
		return
	}
	st.gotHead, st.ttfb = true, time.Now()
	st.status = resp.StatusCode
	r := &ctx.Response
	r.Header.DisableNormalizing()
	r.SetStatusCode(resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	p.label(ctx, st, ss, cookie)
	b := &h2Body{st: st, resp: resp, cancel: cancel, grpc: isGRPC(&ctx.Request.Header), hdr: &r.Header}
	if resp.ContentLength == 0 {
		// No body: most often the upstream ended the stream with its
		// header block (a gRPC trailers-only answer), and so must the
		// client's response, or gRPC clients see no trailers at all.
		_, _ = io.Copy(io.Discard, b) // nothing, or trailers
		_ = b.Close()
		return
	}
	r.ImmediateHeaderFlush = true
	size := int(resp.ContentLength)
	if len(resp.Trailer) > 0 || b.grpc {
		size = -1 // trailers follow: an HTTP/1.1 client needs a chunked body to get them
	}
	r.SetBodyStream(b, size)
}

// h2Request builds the upstream request from the scrubbed HTTP/1.1 head.
func h2Request(head []byte, ctx *fasthttp.RequestCtx) (*http.Request, error) {
	u, err := url.ParseRequestURI(string(ctx.Request.Header.RequestURI()))
	if err != nil {
		return nil, fmt.Errorf("request target: %w", err)
	}
	req := &http.Request{Method: string(ctx.Method()), URL: u, Header: make(http.Header), Proto: "HTTP/2.0", ProtoMajor: 2}
	rest := head
	if i := indexCRLF(rest); i >= 0 {
		rest = rest[i+2:] // the request line
	}
	for len(rest) > 2 {
		var k, v []byte
		k, v, _, rest = nextField(rest)
		switch {
		case len(k) == 0, equalFold(k, hdrTE):
		case equalFold(k, hdrHost):
			req.Host = string(v)
		default:
			req.Header.Add(string(k), string(v))
		}
	}
	if wantsTrailers(&ctx.Request.Header) {
		req.Header.Set("Te", "trailers")
	}
	req.ContentLength = 0
	if body := ctx.RequestBodyStream(); body != nil && ctx.Request.Header.ContentLength() != -2 {
		req.Body = io.NopCloser(body)
		req.ContentLength = int64(ctx.Request.Header.ContentLength())
		if req.ContentLength < 0 {
			req.ContentLength = -1
		}
	}
	return req, nil
}

func indexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// wantsTrailers reports "TE: trailers" in a request (RFC 9110 §10.1.4).
func wantsTrailers(h *fasthttp.RequestHeader) bool {
	for k, v := range h.All() {
		if equalFold(k, []byte("TE")) && containsToken(v, "trailers") {
			return true
		}
	}
	return false
}

// containsToken reports whether a comma-separated list holds tok.
func containsToken(list []byte, tok string) bool {
	for len(list) > 0 {
		var item []byte
		if i := indexByteOf(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if equalFold(ows.Trim(item), []byte(tok)) {
			return true
		}
	}
	return false
}

func indexByteOf(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// roundTripH2 picks an endpoint and sends req, retrying once on another
// endpoint when the upstream cannot have processed it: the dial failed,
// the stream was refused, or a GOAWAY left it out (h2retry.go).
func (st *reqState) roundTripH2(req *http.Request) (*http.Response, cause) {
	p := st.p
	var tried *endpoint
	var body *replayBody
	if req.Body != nil {
		body = &replayBody{src: req.Body}
		req.Body = body
	}
	for attempt := 0; ; attempt++ {
		ep := st.cell.pickEndpoint(p.rand(), tried, p.health.nowNano)
		if ep == nil {
			if tried != nil {
				return nil, st.lastCause
			}
			return nil, causeNoEndpoint
		}
		ep.outstanding.Add(1)
		req.URL.Scheme, req.URL.Host = "http", ep.addr
		if st.cell.proto == ProtoH2 {
			req.URL.Scheme = "https"
		}
		resp, err := ep.h2.RoundTrip(req)
		if err == nil {
			st.ep = ep
			if resp.StatusCode >= 500 {
				p.noteFailure(st.cell, ep, causeNone, false)
			} else {
				p.health.success(ep)
			}
			return resp, causeNone
		}
		ep.outstanding.Add(-1)
		var se http2.StreamError
		st.upstreamCancelled = errors.As(err, &se) && se.Code == http2.ErrCodeCancel
		c := classify(err, !isDialError(err))
		if req.Context().Err() == nil && c != causeBusy {
			p.noteFailure(st.cell, ep, c, true)
		}
		st.lastCause = c
		if attempt > 0 || !unprocessed(err) || req.Context().Err() != nil {
			return nil, c
		}
		if body != nil {
			next, ok := body.replay()
			if !ok {
				return nil, c
			}
			body, req.Body = next, next
		}
		tried = ep
	}
}

// isDialError reports a failure to connect, before any byte was sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// h2Body streams an HTTP/2 upstream's response body to the client and
// settles the request when done: trailers handed on, the call judged by
// its grpc-status when it is one, the request recorded.
type h2Body struct {
	st     *reqState
	resp   *http.Response
	cancel context.CancelFunc
	hdr    *fasthttp.ResponseHeader // the client's response, for trailers
	grpc   bool
	eof    bool
	err    error
}

// Read passes the body on; at its end the upstream's trailers are added to
// the client's response. A gRPC call whose grpc-timeout ran out ends with
// DEADLINE_EXCEEDED trailers rather than a reset.
func (b *h2Body) Read(buf []byte) (int, error) {
	n, err := b.resp.Body.Read(buf)
	b.st.acc.bytesOut += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		for k, vs := range b.resp.Trailer {
			for _, v := range vs {
				_ = b.hdr.AddTrailer(k)
				b.hdr.Add(k, v)
			}
		}
	case err != nil && b.grpc && errors.Is(err, context.DeadlineExceeded):
		b.eof = true
		_ = b.hdr.AddTrailer("grpc-status")
		_ = b.hdr.AddTrailer("grpc-message")
		b.hdr.Set("grpc-status", strconv.Itoa(grpcDeadlineExceeded))
		b.hdr.Set("grpc-message", grpcCauses[causeTimeout].msg)
		b.resp.Trailer = http.Header{"Grpc-Status": {strconv.Itoa(grpcDeadlineExceeded)}}
		return n, io.EOF
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close ends the exchange and records it once.
func (b *h2Body) Close() error {
	st := b.st
	_ = b.resp.Body.Close()
	b.cancel()
	status, failed := st.status, false
	switch {
	case b.err != nil || !b.eof:
		// A reset or broken stream is the cell's failure, as a truncated
		// HTTP/1.1 body is; a client that went away first is not.
		if b.err != nil {
			st.p.noteFailure(st.cell, st.ep, causeTruncated, false)
			status, failed = causes[causeTruncated].status, true
		}
		if b.grpc {
			st.cell.stats.grpc.count(0, false)
		}
	case b.grpc:
		code, ok := b.grpcStatus()
		st.acc.grpcStatus, st.acc.hasGRPC = code, ok
		// Recorded as a failure while the HTTP status stays what the
		// client got (200): the SLIs count the call, not its envelope.
		failed = !ok || st.set.grpcFail.has(code)
		st.cell.stats.grpc.count(code, ok)
	}
	st.finish(status, failed)
	return nil
}

// grpcStatus is the call's grpc-status: from the trailers, or from the
// header block of a trailers-only response.
func (b *h2Body) grpcStatus() (int, bool) {
	v := b.resp.Trailer.Get("Grpc-Status")
	if v == "" {
		v = b.resp.Header.Get("Grpc-Status")
	}
	return parseGRPCStatus(v)
}
