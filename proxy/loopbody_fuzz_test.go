//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"

	"github.com/valyala/fasthttp"
)

// FuzzLoopFraming feeds client bytes, in pieces, to the loop's framing
// (loop.frame: the front door's validator, then the decision to serve,
// wait or hand over) as clientEvent and requestDone would, and checks
// every request it serves against fasthttp reading the same bytes: the
// same head and body, a Content-Length body within the loop's bounds
// (loopBodyMax, the read buffer, max_request_body), never more bytes than
// were read. No sockets: frame touches the connection's buffers only.
func FuzzLoopFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"P",
		"GET /a?b=c HTTP/1.1\r\nhost: x:80\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive\r\nX-User-ID: u1\r\n\r\n",
		"HEAD / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.2\r\nHost: x\r\nVia: 1.0 a\r\nConnection: close, x-a\r\nX-A: 1\r\nx-user-id:\t u2 \r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\nX-Cellgate-Override: cell=a\r\n\r\n",
		"OPTIONS /x HTTP/1.1\r\nHost: x\r\nCookie: session=s\r\nUser-Agent: a\r\nuser-agent: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	opts := testOptions()
	opts.ReadBufferSize = 4096 // maxHead: a head and body together past it are handed over
	opts.MaxRequestBody = 3000 // below the read buffer, to be hit
	// The default key sources, behind a trusted proxy: the key, the client
	// address in X-Forwarded-For and the override header are all read.
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceCookie, Name: "session"}, {Kind: balancer.SourceIP}}
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}}}, Hooks{})
	if err != nil {
		f.Fatal(err)
	}
	l := &loop{lc: &loopCore{p: p}, p: p}
	l.br = bufio.NewReaderSize(&l.src, l.maxHead())
	// slow is the same loop reading every head with fasthttp's parser:
	// the loop's own scan of a simple head (loopreqhead.go) must decide,
	// route and forward as it does.
	slow := &loop{lc: l.lc, p: p, slowHead: true}
	slow.br = bufio.NewReaderSize(&slow.src, slow.maxHead())
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		step := int(piece)%64 + 1
		if a, b := data[:len(data)/2], data[len(data)/2:len(data)/2*2]; equalFold(a, b) != bytes.EqualFold(a, b) {
			t.Fatalf("equalFold(%q, %q) = %v, bytes.EqualFold says otherwise", a, b, equalFold(a, b))
		}
		c := newFuzzConn(l)
		sc := newFuzzConn(slow)
		var want fasthttp.Request
		for off := 0; off < len(data); {
			if len(c.in) >= l.maxHead() {
				return // clientEvent hands a full buffer over
			}
			k := min(step, len(data)-off, l.maxHead()-len(c.in))
			c.in = append(c.in, data[off:off+k]...)
			off += k
			sc.in = append(sc.in, data[off-k:off]...)
			for {
				v := l.frame(c)
				if sv := slow.frame(sc); sv != v {
					t.Fatalf("%q: verdict %d, with fasthttp's parser %d", c.in, v, sv)
				}
				if v == frameHandoff {
					return
				}
				if v == frameWait {
					if c.fed > len(c.in) || (c.bodyWait && c.body > c.fed) {
						t.Fatalf("waiting with fed %d, body %d of %d bytes", c.fed, c.body, len(c.in))
					}
					break
				}
				// Served: the request is c.in[:c.fed], its body the last
				// c.body bytes; fasthttp reads them alike.
				req := &c.ctx.Request
				cl := req.Header.ContentLength()
				if c.fed > len(c.in) || c.fed > l.maxHead() || c.body > loopBodyMax || c.body > opts.MaxRequestBody ||
					(cl > 0 && c.body != cl) || (cl <= 0 && c.body != 0) {
					t.Fatalf("served %d of %d bytes with a %d-byte body (Content-Length %d)", c.fed, len(c.in), c.body, cl)
				}
				want.Reset()
				want.Header.DisableNormalizing() // as the goroutine core's server reads it
				br := bufio.NewReader(bytes.NewReader(c.in[:c.fed]))
				err := want.Read(br)
				if err == nil && want.MayContinue() {
					err = want.ContinueReadBody(br, 0) // Read stops at the head of a request that expects 100 Continue
				}
				if err != nil {
					t.Fatalf("fasthttp cannot read what the loop serves %q: %v", c.in[:c.fed], err)
				}
				if body := c.in[c.fed-c.body : c.fed]; !bytes.Equal(want.Body(), body) || !bytes.Equal(want.Header.Method(), req.Header.Method()) ||
					!bytes.Equal(want.Header.RequestURI(), req.Header.RequestURI()) {
					t.Fatalf("loop serves %s %s with body %q; fasthttp reads %s %s with body %q",
						req.Header.Method(), req.Header.RequestURI(), body, want.Header.Method(), want.Header.RequestURI(), want.Body())
				}
				if c.expect100 != want.MayContinue() { // the loop answers it 100 Continue (loopexpect.go)
					t.Fatalf("loop serves %q with expect100 %v; fasthttp's MayContinue says %v", c.in[:c.fed], c.expect100, want.MayContinue())
				}
				sameRequest(t, p, c, sc)
				// requestDone: the bytes after it are the next request's.
				rest := copy(c.in, c.in[c.fed:])
				c.in, c.fed, c.body, c.expect100 = c.in[:rest], 0, 0, false
				rest = copy(sc.in, sc.in[sc.fed:])
				sc.in, sc.fed, sc.body, sc.expect100 = sc.in[:rest], 0, 0, false
			}
		}
	})
}

// newFuzzConn is a client connection of l from 127.0.0.1 (a trusted
// proxy in FuzzLoopFraming's options), without a socket.
func newFuzzConn(l *loop) *lconn {
	c := &lconn{ctx: new(fasthttp.RequestCtx), raddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	c.stub.c = c
	c.ctx.Init2(&c.stub, nil, true) // as newConn
	c.v.Reset(l.fdConfig())
	return c
}

// sameRequest checks that two connections' served requests read alike
// through what the request path uses of them — the parsed header's
// accessors, the route (key, cell, override, flags) and the upstream head —
// the first read by the loop's scan where simple, the second always by
// fasthttp's parser.
func sameRequest(t *testing.T, p *Proxy, c, sc *lconn) {
	t.Helper()
	h, sh := &c.ctx.Request.Header, &sc.ctx.Request.Header
	got, want := headView(h, c.raw), headView(sh, sc.raw)
	if got != want {
		t.Fatalf("%q: the loop's head reads\n%s\nfasthttp's parser's\n%s", c.in[:c.fed], got, want)
	}
	snap := p.snap.Load()
	var heads [2][]byte
	var routes [2]string
	for i, x := range []*lconn{c, sc} {
		st := p.acquireState()
		st.start = time.Now()
		st.client = &x.stub
		if x == c {
			x.givePeer(st) // as the loop's start; sc's route works it out itself
		}
		rt, ok := p.route(x.ctx, st, snap)
		if ok {
			st.bodyLen = int64(x.ctx.Request.Header.ContentLength())
			in := st.headInfo(x.ctx)
			in.trace = nil // random ids
			heads[i] = st.scrub.appendRequestHead(nil, &x.ctx.Request.Header, x.raw, &in)
			routes[i] = fmt.Sprintf("key %q hash %x cell %d %s cookie %v overridden %v flags %q",
				st.acc.key, rt.keyHash, rt.idx, st.cell.name, rt.cookie, st.overridden, st.flagsVal)
			st.release()
		}
	}
	if routes[0] != routes[1] || !bytes.Equal(heads[0], heads[1]) {
		t.Fatalf("%q: the loop's scan routes %s and sends\n%q\nfasthttp's parser routes %s and sends\n%q",
			c.in[:c.fed], routes[0], heads[0], routes[1], heads[1])
	}
}

// headView is what the request path can read of a parsed request header;
// no body reads as 0 (simpleHead's) or -2 (the parser's) Content-Length.
func headView(h *fasthttp.RequestHeader, raw []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q http11=%v close=%v cl=%d host=%q ua=%q ct=%q raw=%q\n", h.Method(), h.RequestURI(), h.Protocol(),
		h.IsHTTP11(), h.ConnectionClose(), max(h.ContentLength(), 0), h.Host(), h.UserAgent(), h.ContentType(), raw)
	for k, v := range h.All() {
		fmt.Fprintf(&b, "%q: %q\n", k, v)
	}
	for _, k := range []string{"X-User-ID", "Connection", "X-Forwarded-For", "Transfer-Encoding", "traceparent"} {
		fmt.Fprintf(&b, "peek %s=%q\n", k, h.Peek(k))
	}
	fmt.Fprintf(&b, "cookie session=%q len=%d", h.Cookie("session"), h.Len())
	return b.String()
}

// BenchmarkLoopRequestSide is the loop's request side without sockets, for
// wrk's request: frame (front door, head read), route, the upstream head.
// "scan" reads the head with simpleHead, "parser" with fasthttp's parser
// as before.
func BenchmarkLoopRequestSide(b *testing.B) {
	opts := loopOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceCookie, Name: "session"}, {Kind: balancer.SourceIP}}
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}}}, Hooks{})
	if err != nil {
		b.Fatal(err)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n\r\n")
	for _, slowHead := range []bool{false, true} {
		name := "scan"
		if slowHead {
			name = "parser"
		}
		b.Run(name, func(b *testing.B) {
			l := &loop{lc: &loopCore{p: p}, p: p, slowHead: slowHead}
			l.br = bufio.NewReaderSize(&l.src, l.maxHead())
			c := newFuzzConn(l)
			snap := p.snap.Load()
			b.ReportAllocs()
			for b.Loop() {
				c.in = append(c.in[:0], req...)
				c.fed = 0
				if l.frame(c) != frameServe {
					b.Fatal("not served")
				}
				st := p.acquireState()
				st.start = l.startClock()
				st.client = &c.stub
				c.givePeer(st)
				if _, ok := p.route(c.ctx, st, snap); !ok {
					b.Fatal("not routed")
				}
				st.bodyLen = int64(c.ctx.Request.Header.ContentLength())
				in := st.headInfo(c.ctx)
				st.head = st.scrub.appendRequestHead(st.head[:0], &c.ctx.Request.Header, c.raw, &in)
				st.release()
			}
		})
	}
}
