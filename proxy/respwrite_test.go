package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testcert"
	"github.com/cellgate/cellgate/internal/testh1"
	"github.com/valyala/fasthttp"
)

// TestResponseHeadFidelity sends a request through a proxy behind the front
// door to an upstream that answers with raw bytes, and compares what the
// client got, byte for byte, with the upstream's answer less the
// documented changes (README "What cellgate changes in a request and a
// response", respwrite.go): field order, name case, value spacing and
// repeats kept; hop-by-hop fields gone; framing cellgate's, the upstream's
// framing line kept in place where it still holds.
func TestResponseHeadFidelity(t *testing.T) {
	const get = "GET /r HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name   string
		labels bool   // routing.response_headers on
		tls    bool   // the proxy listens with TLS
		req    string // default get
		resp   string // the upstream's answer
		want   string // exactly what the client must get
	}{{
		name: "order, case, spacing and repeats of every field kept, Content-Length in place",
		resp: "HTTP/1.1 201 Made It\r\nX-A: 1\r\nContent-Type: text/x\r\nSet-Cookie: s=\"1 2\"\r\nx-b:  2 \r\n" +
			"Date: Mon\r\nServer: up/1\r\nX-A: 3\r\ncontent-length: 2\r\nContent-Type:text/y\r\nServer: up/2\r\n" +
			"Set-Cookie: t=1\r\nset-cookie: u=1\r\nSET-COOKIE: u=2\r\nContent-Encoding: identity\r\nConnection: X-Hop\r\nX-Hop: h\r\n\r\nok",
		want: "HTTP/1.1 201 Made It\r\nX-A: 1\r\nContent-Type: text/x\r\nSet-Cookie: s=\"1 2\"\r\nx-b:  2 \r\n" +
			"Date: Mon\r\nServer: up/1\r\nX-A: 3\r\ncontent-length: 2\r\nContent-Type:text/y\r\nServer: up/2\r\n" +
			"Set-Cookie: t=1\r\nset-cookie: u=1\r\nSET-COOKIE: u=2\r\nContent-Encoding: identity\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name: "same over TLS",
		tls:  true,
		resp: "HTTP/1.1 200 OK\r\nx-z: 1\r\nContent-Type: a/b\r\nSet-Cookie: a=1\r\nX-Y:2\r\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 200 OK\r\nx-z: 1\r\nContent-Type: a/b\r\nSet-Cookie: a=1\r\nX-Y:2\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name: "hop-by-hop fields and those Connection names go",
		resp: "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nX-Keep: 1\r\nConnection: keep-alive, X-Secret\r\n" +
			"Proxy-Authenticate: Basic\r\nX-Secret: s\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 200 OK\r\nX-Keep: 1\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name: "chunked body: Transfer-Encoding line and Trailer in place, trailer fields after the body",
		resp: "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-B: 2\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-B: 2\r\n" +
			"Via: 1.1 cellgate\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
	}, {
		name: "large known-length body streams with its Content-Length in place",
		resp: "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\nX-After: 1\r\n\r\n" + strings.Repeat("z", 70000),
		want: "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\nX-After: 1\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\n" +
			strings.Repeat("z", 70000),
	}, {
		name: "both Content-Length and Transfer-Encoding: chunked frames it, Content-Length goes",
		resp: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"2\r\nok\r\n0\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	}, {
		name: "close-delimited body to a 1.1 client is chunked, at the end of the head",
		resp: "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\nabc",
		want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nVia: 1.1 cellgate\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"3\r\nabc\r\n0\r\n\r\n",
	}, {
		name: "HTTP/1.0 upstream: version 1.1, Via 1.0",
		resp: "HTTP/1.0 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nVia: 1.0 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name: "HEAD: the upstream's Content-Length stays, no body",
		req:  "HEAD /r HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		resp: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-A: 1\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-A: 1\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\n",
	}, {
		name: "304 keeps its fields, no body",
		resp: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nCache-Control: max-age=1\r\n\r\n",
		want: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nCache-Control: max-age=1\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\n",
	}, {
		name: "obs-fold becomes spaces, space before a colon goes, bare LF becomes CRLF",
		resp: "HTTP/1.1 200 OK\nX-Fold: a\r\n  b\r\nX-Sp : v\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 200 OK\r\nX-Fold: a    b\r\nX-Sp: v\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name: "a head with bare LF line ends throughout is read at once and sent with CRLF",
		resp: "HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok",
		want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}, {
		name:   "cellgate's labels replace the upstream's and follow its fields",
		labels: true,
		resp:   "HTTP/1.1 200 OK\r\nX-Cellgate-Cell: forged\r\nX-A: 1\r\nx-cellgate-version: forged\r\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\n" +
			"X-Cellgate-Cell: a\r\nX-Cellgate-Version: v1\r\nConnection: close\r\n\r\nok",
	}, {
		name: "status line without a reason phrase gets its space",
		resp: "HTTP/1.1 299\r\nContent-Length: 2\r\n\r\nok",
		want: "HTTP/1.1 299 \r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := startRecorder(t, tc.resp)
			opts := testOptions()
			opts.ResponseHeaders = tc.labels
			p, err := New(opts, 42, []CellSpec{{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{rec.addr}}}, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			var cert *tls.Certificate
			var clientTLS *tls.Config
			if tc.tls {
				cert, _ = testcert.New(t, "cellgate test")
				clientTLS = &tls.Config{InsecureSkipVerify: true}
			}
			addr := serveProxy(t, p, cert)
			req := tc.req
			if req == "" {
				req = get
			}
			got := rawExchange(t, addr, req, clientTLS)
			rec.next(t)
			if got != tc.want {
				t.Errorf("client got\n%q\nwant\n%q", trimLong(got), trimLong(tc.want))
			}
			if n := p.conns.swaps.missed.Load(); n != 0 {
				t.Errorf("%d response heads went out as the server wrote them", n)
			}
		})
	}
}

// trimLong shortens a long exchange for an error message.
func trimLong(s string) string {
	if len(s) > 400 {
		return s[:200] + "…" + s[len(s)-100:]
	}
	return s
}

// TestResponseHeadPipelined sends three requests in one write on one
// connection, straight to the server (no front door, which hands it one
// request at a time): each response must carry its own upstream's head,
// which holds only while the server flushes each response before it
// serves the next (ReduceMemoryUsage; headswap.go). A server that batched
// them would leave the heads of all but the first as it wrote them.
func TestResponseHeadPipelined(t *testing.T) {
	rec := startRecorder(t, "HTTP/1.1 200 OK\r\nX-Z: z\r\nContent-Type: a/b\r\nContent-Length: 2\r\n\r\nok")
	opts := testOptions()
	opts.ResponseHeaders = false
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{rec.addr}}}, Hooks{})
	one := "GET /p HTTP/1.1\r\nHost: app.example\r\n\r\n"
	got := rawExchange(t, addr, one+one+strings.Replace(one, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1), nil)
	resp := "HTTP/1.1 200 OK\r\nX-Z: z\r\nContent-Type: a/b\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\n"
	want := resp + "\r\nok" + resp + "\r\nok" + resp + "Connection: close\r\n\r\nok"
	if got != want {
		t.Errorf("client got\n%q\nwant\n%q", got, want)
	}
	if n := p.conns.swaps.missed.Load(); n != 0 {
		t.Errorf("%d response heads went out as the server wrote them", n)
	}
}

// TestResponseHeadSwapFallsBack arms a connection and has something other
// than the armed response written: it goes out unchanged and is counted.
func TestResponseHeadSwapFallsBack(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tr := &connTracker{}
	tc := &trackedConn{Conn: a, t: tr}
	var rh respHead
	rh.build([]byte("HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n"), &scrub{}, false)
	for _, w := range []string{
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno", // another status
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",                        // no end of head
	} {
		hs := tr.swaps.get()
		hs.head.buf = append(hs.head.buf[:0], rh.buf...)
		hs.head.cl, hs.head.clv = rh.cl, rh.clv
		tc.armHeadSwap(hs, 200)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, len(w))
			_, _ = io.ReadFull(b, buf)
			got <- string(buf)
		}()
		if _, err := tc.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
		if g := <-got; g != w {
			t.Errorf("wrote %q, want it unchanged %q", g, w)
		}
	}
	if n := tr.swaps.missed.Load(); n != 2 {
		t.Errorf("missed %d, want 2", n)
	}
}

// FuzzResponseHeadBuild writes the client head for arbitrary upstream
// bytes that fasthttp's parser accepts as a response head: it never
// panics, and what it writes is one well-formed head — CRLF lines only,
// one status line of HTTP/1.1 with the upstream's status code, fields that
// fasthttp parses back, and never both Content-Length and
// Transfer-Encoding. And the loop core's two ways to decide
// a final head agree: whenever the simple one (simpleHead) takes a head,
// its client head, status, length, upstream close and relay mode are
// those of the general one (fasthttp's parse, planParsed,
// appendServerHead) on the same bytes and request. opts: bit 0 the
// client's connection closes, bit 1 cellgate writes its own cell fields,
// bit 2 a HEAD request, bit 3 a cookie to set.
func FuzzResponseHeadBuild(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 404 Nope\nX-F: a\r\n\tb\r\nX : y\n\n",
		"HTTP/1.1 200 OK\r\nConnection: a, b\r\nA: 1\r\nB: 2\r\nSet-Cookie: x=1\r\n\r\n",
		"HTTP/1.1 299\r\n\r\n",
	} {
		f.Add([]byte(s), false, uint8(0))
	}
	for _, s := range simpleHeadSeeds {
		for opts := range uint8(16) {
			f.Add([]byte(s), opts&1 != 0, opts)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, chunked bool, opts uint8) {
		_, raw, err := peekHead(bufio.NewReaderSize(bytes.NewReader(b), 4096))
		if err != nil || raw == nil {
			return
		}
		compareSimpleHead(t, raw, opts)
		var up fasthttp.ResponseHeader
		if readHeadInto(&up, bufio.NewReader(bytes.NewReader(b)), raw) != nil {
			return // the proxy answers 502: nothing is written
		}
		var rh respHead
		rh.build(raw, &scrub{}, true)
		if len(rh.buf) == 0 {
			return // not copied: the server's own head goes
		}
		rh.appendOwn(false, []byte("c"), []byte("v"), nil, nil)
		fr := framing{chunked: chunked}
		if !chunked {
			fr.cl = []byte("2")
		}
		out := rh.appendFinal(nil, &fr)
		checkHead(t, out, up.StatusCode())
	})
}

// simpleHeadSeeds are upstream heads for FuzzResponseHeadBuild's
// comparison of the loop's two ways: the bench upstream's, and the tricky
// heads around it.
var simpleHeadSeeds = []string{
	"HTTP/1.1 200 OK\r\nServer: benchupstream\r\nDate: Mon, 30 Nov 2026 15:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 128\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 5\n\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n",
	"HTTP/1.1 200 OK\r\ncontent-length:\t7 \r\nX-Cellgate-Cell: up\r\nSet-Cookie: a=1\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Cellgate-Exposed: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding:  CHUNKED \r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Z : 1\r\nContent-Length: 1\r\n\r\n",
}

// compareSimpleHead fails t when the loop's simple way (simpleHead)
// takes the final head raw and decides it otherwise than the general way.
func compareSimpleHead(t *testing.T, raw []byte, opts uint8) {
	t.Helper()
	closing, own, isHead, cookies := opts&1 != 0, opts&2 != 0, opts&4 != 0, opts&8 != 0
	cell, version := []byte(nil), []byte(nil)
	if own {
		cell, version = []byte("c"), []byte("v")
	}
	const maxHead = 4096 // the parser's buffer (the loop's l.br)
	var fast respHead
	fp, ok := fast.simpleHead(raw, isHead, cookies, own, maxHead)
	if !ok {
		return
	}
	fast.appendOwn(false, cell, version, nil, nil)
	got := fast.appendSimple(nil, closing)

	// The general way, as readHead and gotHead take it.
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	fr := scanHead(raw)
	var s scrub
	var slow respHead
	slow.build(raw, &s, own)
	if err := readHeadInto(&h, bufio.NewReaderSize(bytes.NewReader(raw), maxHead), raw); err != nil {
		t.Fatalf("simple head %q, but fasthttp refuses it: %v", raw, err)
	}
	if sc := h.StatusCode(); sc < 200 || sc == fasthttp.StatusSwitchingProtocols {
		t.Fatalf("simple head %q is not final (%d)", raw, sc)
	}
	sp := planParsed(&h, fr, isHead)
	s.prepareResponse(&h, fr&headHTTP10 != 0)
	if own { // label
		h.SetBytesKV(hdrCell, cell)
		h.SetBytesKV(hdrVersion, version)
	}
	slow.appendOwn(fr&headHTTP10 != 0, cell, version, nil, nil)
	var hb []byte
	want := appendServerHead(nil, &h, &slow, &sp, closing, &hb)
	if fp != sp {
		t.Fatalf("head %q (opts %04b): simple plan %+v, general %+v", raw, opts, fp, sp)
	}
	if want := simpleFraming(&fp); fr != want {
		t.Fatalf("head %q: simple, but its framing fields are %v, not %v", raw, fr, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("head %q (opts %04b): simple way writes\n%q\ngeneral way\n%q", raw, opts, got, want)
	}
}

// TestSimpleResponseHead: the loop decides the common heads the simple
// way (the bench upstream's among them) and leaves the rest to the
// general way; what it writes for them is pinned.
func TestSimpleResponseHead(t *testing.T) {
	const bench = "HTTP/1.1 200 OK\r\nServer: benchupstream\r\nContent-Type: text/plain\r\nContent-Length: 128\r\n\r\n"
	for _, tc := range []struct {
		name    string
		head    string
		opts    uint8 // compareSimpleHead's
		simple  bool
		written string // the client's head when simple (cellgate's own fields "c"/"v" with opts bit 1)
	}{
		{"bench", bench, 0, true, "HTTP/1.1 200 OK\r\nServer: benchupstream\r\nContent-Type: text/plain\r\nContent-Length: 128\r\nVia: 1.1 cellgate\r\n\r\n"},
		{"bench labelled, closing", bench, 3, true, "HTTP/1.1 200 OK\r\nServer: benchupstream\r\nContent-Type: text/plain\r\nContent-Length: 128\r\nVia: 1.1 cellgate\r\nX-Cellgate-Cell: c\r\nX-Cellgate-Version: v\r\nConnection: close\r\n\r\n"},
		{"own fields dropped", "HTTP/1.1 404 Not Found\r\nx-cellgate-cell: up\r\nX-Cellgate-Version: 9\r\ncontent-length:\t0 \r\n\r\n", 2, true, "HTTP/1.1 404 Not Found\r\ncontent-length:\t0 \r\nVia: 1.1 cellgate\r\nX-Cellgate-Cell: c\r\nX-Cellgate-Version: v\r\n\r\n"},
		{"own fields kept", "HTTP/1.1 500 Oops\r\nX-Cellgate-Cell: up\r\nContent-Length: 3\r\n\r\n", 0, true, "HTTP/1.1 500 Oops\r\nX-Cellgate-Cell: up\r\nContent-Length: 3\r\nVia: 1.1 cellgate\r\n\r\n"},
		{"upstream cookie", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 1\r\nSet-Cookie: b=2\r\n\r\n", 0, true, "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 1\r\nSet-Cookie: b=2\r\nVia: 1.1 cellgate\r\n\r\n"},
		{"HEAD request", bench, 4, false, ""},
		{"cookie to set", bench, 8, false, ""},
		{"Connection close", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", 0, false, ""},
		{"Keep-Alive", "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", 1, true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\n"},
		{"chunked, spaced and cased", "HTTP/1.1 201 Created\r\ntransfer-encoding:  Chunked\t\r\n\r\n", 0, true, "HTTP/1.1 201 Created\r\ntransfer-encoding:  Chunked\t\r\nVia: 1.1 cellgate\r\n\r\n"},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, false, ""},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false, ""},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"no length", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", 0, false, ""},
		{"duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"leading zero CL", "HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n", 0, false, ""},
		{"signed CL", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", 0, false, ""},
		{"huge CL", "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", 0, false, ""},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0, false, ""},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"100", "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", 0, false, ""},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n", 0, false, ""},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 5\n\n", 0, false, ""},
		{"bare LF end", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\n", 0, false, ""},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"exposed flags", "HTTP/1.1 200 OK\r\nX-Cellgate-Exposed: f\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"trailer", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"control in value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
		{"too large", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", 4096) + "\r\nContent-Length: 5\r\n\r\n", 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rh respHead
			own := tc.opts&2 != 0
			_, ok := rh.simpleHead([]byte(tc.head), tc.opts&4 != 0, tc.opts&8 != 0, own, 4096)
			if ok != tc.simple {
				t.Fatalf("simple %v, want %v: %q", ok, tc.simple, tc.head)
			}
			compareSimpleHead(t, []byte(tc.head), tc.opts)
			if !ok {
				return
			}
			var cell, version []byte
			if own {
				cell, version = []byte("c"), []byte("v")
			}
			rh.appendOwn(false, cell, version, nil, nil)
			if got := string(rh.appendSimple(nil, tc.opts&1 != 0)); got != tc.written {
				t.Fatalf("wrote\n%q\nwant\n%q", got, tc.written)
			}
		})
	}
}

// checkHead fails t unless head is one well-formed HTTP/1.1 response head
// with status code sc.
func checkHead(t *testing.T, head []byte, sc int) {
	t.Helper()
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.Index(head, []byte("\r\n\r\n")) != len(head)-4 {
		t.Fatalf("head does not end at its first empty line: %q", head)
	}
	if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) || bytes.Count(head, []byte("\r")) != bytes.Count(head, []byte("\r\n")) {
		t.Fatalf("bare CR or LF in %q", head)
	}
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
		t.Fatalf("head does not parse: %v\n%q", err, head)
	}
	if h.StatusCode() != sc || !bytes.HasPrefix(head, []byte("HTTP/1.1 ")) {
		t.Fatalf("status %d, want %d: %q", h.StatusCode(), sc, head)
	}
	lower := bytes.ToLower(head)
	if bytes.Contains(lower, []byte("\r\ncontent-length:")) && bytes.Contains(lower, []byte("\r\ntransfer-encoding:")) {
		t.Fatalf("both framings: %q", head)
	}
}

// TestResponseHeadWebSocket101: a WebSocket handshake's 101 reaches the
// client with the upstream's fields as sent, in order, and Upgrade and
// Connection (hop-by-hop) written anew after them.
func TestResponseHeadWebSocket101(t *testing.T) {
	upAddr, _ := recordingUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"+
		"Upgrade: websocket\r\nX-Z: 1\r\nConnection: Upgrade\r\nSet-Cookie: a=1\r\n\r\n")
	opts := wsOptions()
	opts.ResponseHeaders = false
	_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{upAddr}}}, Hooks{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	head, _ := testh1.ReadHead(bufio.NewReader(c))
	want := "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Z: 1\r\nSet-Cookie: a=1\r\n" +
		"Via: 1.1 cellgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	if head != want {
		t.Errorf("client got\n%q\nwant\n%q", head, want)
	}
}
