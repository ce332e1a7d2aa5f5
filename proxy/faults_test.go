package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/valyala/fasthttp"
)

// outcome is one Record call.
type outcome struct {
	status   int
	proxyErr bool
}

// outcomes is a CellRecorder that keeps every outcome.
type outcomes struct {
	mu  sync.Mutex
	got []outcome
}

func (o *outcomes) Record(status int, proxyErr bool, _, _ time.Duration) {
	o.mu.Lock()
	o.got = append(o.got, outcome{status, proxyErr})
	o.mu.Unlock()
}

func (o *outcomes) all() []outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]outcome(nil), o.got...)
}

// scriptedUpstream answers each connection's first request head with resp
// and closes; upClosed counts connections it saw closed by the proxy
// (reads returning EOF after the answer).
func scriptedUpstream(t testing.TB, resp string, upClosed *atomic.Int64) string {
	t.Helper()
	return serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			if _, err := readRawMessage(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
			if upClosed == nil {
				return // the script ends the connection: a cut body
			}
			if _, err := br.Peek(1); err != nil {
				upClosed.Add(1)
				return
			}
		}
	})
}

// TestTruncatedUpstreamBody (issue 13 item 4): an upstream body that ends
// early or is malformed never reaches the client as a whole one — the
// client connection is aborted (a reset where the client's body is
// close-delimited) — and the request counts for the cell as a 502 proxy
// failure (requests_total{code="502"}), not the upstream's 200.
func TestTruncatedUpstreamBody(t *testing.T) {
	mb := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name, resp, req string
		// complete reports whether what the client read would pass for a
		// whole response.
		complete func(got string, err error) bool
	}{{
		name: "content-length cut",
		resp: "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n" + mb,
		req:  "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		complete: func(got string, err error) bool {
			_, body := headOf(got)
			return len(body) == 10<<20
		},
	}, {
		name: "chunked cut",
		resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + mb + "\r\n",
		req:  "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		complete: func(got string, err error) bool {
			return strings.HasSuffix(got, "\r\n0\r\n\r\n")
		},
	}, {
		name: "bad chunk size",
		resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + mb + "\r\nzz\r\n",
		req:  "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		complete: func(got string, err error) bool {
			return strings.HasSuffix(got, "\r\n0\r\n\r\n")
		},
	}, {
		name: "chunked cut, HTTP/1.0 client gets a reset",
		resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + mb + "\r\n",
		req:  "GET / HTTP/1.0\r\n\r\n",
		complete: func(got string, err error) bool {
			return !errors.Is(err, syscall.ECONNRESET)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &outcomes{}
			up := scriptedUpstream(t, tc.resp, nil)
			_, addr := startProxy(t, testOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}},
				Hooks{Recorder: func(string) CellRecorder { return rec }})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c)
			if isTimeout(err) {
				t.Fatalf("the client connection stayed open after a cut body (read %d bytes)", len(b))
			}
			if tc.complete(string(b), err) {
				t.Errorf("client read %d bytes (err %v) that pass for a whole response", len(b), err)
			}
			testwait.For(t, 10*time.Second, "the request to be recorded", func() bool { return len(rec.all()) == 1 })
			if got := rec.all()[0]; got != (outcome{502, true}) {
				t.Errorf("recorded %+v, want a 502 proxy failure", got)
			}
		})
	}
}

// TestContentLengthAndChunked (issue 13 item 9, RFC 9112 §6.3): a response
// with both Content-Length and Transfer-Encoding is read by its chunked
// coding every time, whatever the field order, and its upstream connection
// is closed afterwards rather than reused.
func TestContentLengthAndChunked(t *testing.T) {
	for _, order := range []string{
		"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
	} {
		var closed atomic.Int64
		up := scriptedUpstream(t, "HTTP/1.1 200 OK\r\n"+order+"\r\n5\r\nhello\r\n0\r\n\r\n", &closed)
		_, addr := startProxy(t, testOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
		c := newClient(t, addr)
		for i := range 20 {
			r := get(t, c, "/")
			if r.StatusCode() != 200 || string(r.Body()) != "hello" {
				t.Fatalf("%q, request %d: %d %q, want 200 \"hello\"", order, i, r.StatusCode(), r.Body())
			}
		}
		testwait.For(t, 10*time.Second, "every upstream connection closed by the proxy", func() bool { return closed.Load() == 20 })
	}
}

// TestChunkExtensionWhitespace: whitespace around a chunk extension's ';'
// and '=' (RFC 9112 BWS; HAProxy and nginx relay it, fasthttp's decoder
// refuses it) is read on both cores: the client gets the payload in chunks
// of its own, extensions dropped, the trailer field after the last chunk,
// and the upstream connection carries the next requests (the body ended
// where it ends).
func TestChunkExtensionWhitespace(t *testing.T) {
	var conns atomic.Int64
	up := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			if _, err := readRawMessage(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"+
				"3 ; name = v\r\nabc\r\n2\t;x\r\nde\r\n0 ;end\r\nX-T: 1\r\n\r\n"); err != nil {
				return
			}
		}
	})
	_, addr := startProxy(t, testOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	out := rawExchange(t, addr, req+req+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
	const body = "\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
	if n := strings.Count(out, body); n != 3 || !strings.HasSuffix(out, body) || strings.Count(out, "HTTP/1.1 200 OK\r\n") != 3 {
		t.Fatalf("three answers with whitespace in chunk extensions: %d bodies %q in %q", n, body, out)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the upstream saw %d connections, want 1 (kept alive across the chunked bodies)", n)
	}
}

// TestStalledReaderFreesUpstream (issue 13 item 3): clients that request a
// large body and never read cannot hold the upstream connections: the
// write-progress timeout cuts them and their upstream connections go, so a
// client that reads gets its answer while they still hang on.
func TestStalledReaderFreesUpstream(t *testing.T) {
	big := strings.Repeat("b", 8<<20)
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(big) })
	opts := testOptions()
	opts.MaxConnsPerEndpoint = 2
	// Each write-progress deadline covers a whole splice slice (1 MiB) for
	// the reading client too: the bound must let a starved reader under
	// -race on a busy 2-core machine take 1 MiB in time. Shorter is not
	// what the test is about; it only has to be finite.
	opts.WriteTimeout = 2 * time.Second
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	var stalled []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10) // keep the kernel from soaking up the body
		}
		if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// The first two take both upstream connections; a later one is answered
	// 503 upstream-busy if it arrives while they still hold them (normally
	// both do, but a loaded machine can delay one past the cut). Each
	// status line is read (12 bytes, nothing of the body) to tell them apart.
	busy := 0
	for _, c := range stalled {
		status := make([]byte, len("HTTP/1.1 503"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, status); err == nil && string(status) == "HTTP/1.1 503" {
			busy++
		}
	}
	if busy > 2 {
		t.Fatalf("%d of 4 stalled clients answered 503 with 2 upstream connections allowed", busy)
	}
	// A reading client gets through once the holders are cut.
	c := newClient(t, addr)
	var last *fasthttp.Response
	testwait.For(t, 10*time.Second, "a reading client to get its answer", func() bool {
		last = get(t, c, "/big")
		return last.StatusCode() == 200
	})
	if len(last.Body()) != len(big) {
		t.Fatalf("a reading client got %d bytes, want %d", len(last.Body()), len(big))
	}
	// The stalled clients that held upstream connections were cut; those
	// answered 503 stay open (the reading client now leaves too).
	c.CloseIdleConnections()
	testwait.For(t, 10*time.Second, fmt.Sprintf("only the %d stalled clients answered 503 to stay", busy), func() bool { return p.ConnStats().Open == busy })
	t.Logf("%d of 4 stalled clients answered 503; the others were cut", busy)
}

// closeAfterAnswer answers each connection's first request with a
// keep-alive 200 and then closes it, so the proxy's pooled connection is
// dead when it is next used (the stale-connection case); with reset, it
// takes the second request first and resets the connection.
func closeAfterAnswer(t *testing.T, reset bool) string {
	t.Helper()
	return serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRawMessage(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		if reset {
			// Take the next request, then drop the connection with a
			// reset (as a crashing or restarting server does) before
			// any byte of an answer.
			_, _ = readRawMessage(br)
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	})
}

// TestStaleRetryNeverResendsABody: a pooled connection found dead before
// any response byte lets an idempotent request be retried on another
// endpoint — but only while no byte of its body was read from the client:
// a streamed body cannot be sent twice, nor one the loop core buffered and
// sent with the head (loopbody.go). A bodiless GET is retried; a PUT with
// a body is not (502).
//
// The loop core watches its idle connections: when it has seen the
// upstream's close before the PUT comes, it dials afresh and the PUT is
// answered 200 by the same endpoint, on the first try; only the reset case
// (the upstream takes the request, then resets) is the stale connection
// on both cores whatever the timing.
func TestStaleRetryNeverResendsABody(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		body         []byte
		reset        bool
		want         int
	}{
		{"GET without a body is retried", "GET", nil, false, 200},
		{"GET on a connection the upstream reset is retried", "GET", nil, true, 200},
		{"PUT with a body is not", "PUT", []byte("data"), false, 502},
		{"PUT with a body on a connection the upstream reset is not", "PUT", []byte("data"), true, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var live atomic.Int64
			cells := []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{closeAfterAnswer(t, tc.reset), okUpstream(t, &live)}}}
			_, addr := startProxy(t, testOptions(), cells, Hooks{Rand: func() uint64 { return 0 }})
			c := newClient(t, addr)
			if r := do(t, c, tc.method, "/", tc.body); r.StatusCode() != 200 {
				t.Fatalf("first request: %d", r.StatusCode())
			}
			// The first endpoint closed its connection after answering; the
			// proxy's pool still holds it.
			r := do(t, c, tc.method, "/", tc.body)
			if *proxyCore == CoreLoop && !tc.reset && r.StatusCode() == 200 && live.Load() == 0 {
				return // the loop saw the idle connection close and dialed the same endpoint afresh
			}
			if r.StatusCode() != tc.want {
				t.Fatalf("second request on the dead pooled connection: %d %q, want %d", r.StatusCode(), r.Header.Peek("X-Cellgate-Error"), tc.want)
			}
			if tc.want == 502 && live.Load() != 0 {
				t.Fatalf("the body was sent again, to the other endpoint (%d requests)", live.Load())
			}
		})
	}
}
