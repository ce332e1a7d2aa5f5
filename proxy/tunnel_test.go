package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testcert"
	"github.com/cellgate/cellgate/internal/testh1"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/internal/wsecho"
	"github.com/gorilla/websocket"
	"github.com/valyala/fasthttp"
)

// wsOptions are testOptions with the sticky key in X-User-ID.
func wsOptions() Options {
	o := testOptions()
	o.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	return o
}

// twoWSCells starts WebSocket upstreams for cells a and b (weight 1 each).
func twoWSCells(t *testing.T) ([]CellSpec, map[string]*wsecho.Server) {
	ups := map[string]*wsecho.Server{"a": startWSUpstream(t, "a"), "b": startWSUpstream(t, "b")}
	return []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{ups["a"].Addr}},
		{Name: "b", Version: "v2", Weight: 1, Endpoints: []string{ups["b"].Addr}},
	}, ups
}

// TestWebSocketEcho: a gorilla client and a gorilla server talk through
// the proxy; the handshake is routed by the sticky key like any request,
// reaches the upstream with Upgrade/Connection regenerated and the
// end-to-end fields intact, and the tunnel is measured.
func TestWebSocketEcho(t *testing.T) {
	cells, ups := twoWSCells(t)
	recs := map[string]*statusRecorder{"a": {}, "b": {}}
	p, addr := startProxy(t, wsOptions(), cells, Hooks{Recorder: func(c string) CellRecorder { return recs[c] }})
	for _, cell := range []string{"a", "b"} {
		user := keyFor(t, p, cell)
		c, resp := dialWS(t, addr, "/echo", user)
		if got := resp.Header.Get("X-Cellgate-Cell"); got != cell {
			t.Fatalf("handshake for %s went to cell %q, want %q", user, got, cell)
		}
		if got := resp.Header.Get("X-Upstream"); got != cell {
			t.Fatalf("upstream's own handshake field: %q, want %q", got, cell)
		}
		hs := ups[cell].LastHandshake()
		if hs.Get("Upgrade") != "websocket" || !strings.EqualFold(hs.Get("Connection"), "upgrade") ||
			hs.Get("Sec-Websocket-Key") == "" || hs.Get("Sec-Websocket-Version") != "13" || hs.Get("X-Forwarded-For") == "" {
			t.Fatalf("upstream got handshake fields %v", hs)
		}
		for i := range 200 {
			msg := fmt.Sprintf("message %d to %s", i, cell)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != msg {
				t.Fatalf("echo %d: %q, %v", i, got, err)
			}
		}
		if v, _ := metric(t, p, "cellgate_tunnels", map[string]string{"cell": cell}); v != 1 {
			t.Fatalf("cellgate_tunnels{cell=%s} = %v with one tunnel open", cell, v)
		}
		c.Close()
		testwait.For(t, 10*time.Second, "tunnel of "+cell+" to end", func() bool {
			v, _ := metric(t, p, "cellgate_tunnels", map[string]string{"cell": cell})
			return v == 0
		})
		if v, _ := metric(t, p, "cellgate_tunnels_total", map[string]string{"cell": cell, "code": "101"}); v != 1 {
			t.Fatalf("cellgate_tunnels_total{cell=%s,code=101} = %v, want 1", cell, v)
		}
		if r := recs[cell].all(); len(r) != 1 || r[0] != (recorded{101, false}) {
			t.Fatalf("cell %s recorded %v, want one 101", cell, r)
		}
		if n := p.snap.Load().cells[p.snap.Load().table.Index(cell)].endpoints[0].outstanding.Load(); n != 0 {
			t.Fatalf("endpoint of %s has %d outstanding after the tunnel ended", cell, n)
		}
	}
}

// TestWebSocketReleaseCloses1012 is a release moving a tunnel: the cell's
// weight goes to 0 while its upstream streams messages of every frame
// length as fast as it can; after routing.tunnel_drain the client gets a
// 1012 close frame between two whole messages (never inside one: gorilla
// would report a protocol error), the upstream gets the client's answer,
// and the client's reconnect lands on the other cell.
func TestWebSocketReleaseCloses1012(t *testing.T) {
	cells, ups := twoWSCells(t)
	opts := wsOptions()
	opts.TunnelDrain = 50 * time.Millisecond
	p, addr := startProxy(t, opts, cells, Hooks{})
	user := keyFor(t, p, "b")
	c, _ := dialWS(t, addr, "/push", user)
	var next uint32
	read := func() error {
		_, m, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if want := wsecho.PushMessage(next); !bytes.Equal(m, want) {
			t.Fatalf("message %d: %d bytes, not the %d sent", next, len(m), len(want))
		}
		next++
		return nil
	}
	for range 50 { // the stream is flowing: frames of every length are in flight
		if err := read(); err != nil {
			t.Fatal(err)
		}
	}
	// The client stops reading, so the socket buffers fill and the proxy's
	// copy stands at an arbitrary offset inside a frame when the close is
	// asked for; then it reads on.
	p.SetWeights(map[string]float64{"b": 0})
	testwait.For(t, 10*time.Second, "the proxy to shut the tunnel", func() bool { return shutting(p) == 1 })
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var err error
	for err == nil {
		err = read()
	}
	if code := closeCode(err); code != 1012 {
		t.Fatalf("after %d whole messages: %v, want close 1012", next, err)
	}
	c.Close()
	testwait.For(t, 10*time.Second, "the upstream to get the client's close answer", func() bool {
		codes := ups["b"].CloseCodes()
		return len(codes) == 1 && codes[0] == 1012
	})
	_, resp := dialWS(t, addr, "/echo", user)
	if got := resp.Header.Get("X-Cellgate-Cell"); got != "a" {
		t.Fatalf("reconnect went to %q, want a", got)
	}
	testwait.For(t, 10*time.Second, "b's tunnel to end", func() bool {
		v, _ := metric(t, p, "cellgate_tunnels", map[string]string{"cell": "b"})
		return v == 0
	})
}

// TestWebSocketWeightBackKeepsTunnels: a cell that gets weight back before
// routing.tunnel_drain passes keeps its tunnels.
func TestWebSocketWeightBackKeepsTunnels(t *testing.T) {
	cells, _ := twoWSCells(t)
	opts := wsOptions()
	opts.TunnelDrain = time.Hour
	p, addr := startProxy(t, opts, cells, Hooks{})
	c, _ := dialWS(t, addr, "/echo", keyFor(t, p, "b"))
	p.SetWeights(map[string]float64{"b": 0})
	if !pending(p, "b") {
		t.Fatal("weight 0 armed no drain for b's tunnels")
	}
	p.SetWeights(map[string]float64{"b": 1})
	if pending(p, "b") {
		t.Fatal("weight back on b, but its tunnels are still to be closed")
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "still here" {
		t.Fatalf("echo after weight came back: %q, %v", m, err)
	}
}

// shutting counts the registered tunnels asked to close.
func shutting(p *Proxy) int {
	p.tunnels.mu.Lock()
	defer p.tunnels.mu.Unlock()
	n := 0
	for t := range p.tunnels.open {
		if t.closing.Load() != nil {
			n++
		}
	}
	return n
}

func pending(p *Proxy, cell string) bool {
	p.tunnels.mu.Lock()
	defer p.tunnels.mu.Unlock()
	_, ok := p.tunnels.pending[cell]
	return ok
}

// TestWebSocketCellRemovedByReload: a reload that drops a cell closes its
// tunnels like a weight of 0 does.
func TestWebSocketCellRemovedByReload(t *testing.T) {
	cells, _ := twoWSCells(t)
	opts := wsOptions()
	opts.TunnelDrain = 0
	p, addr := startProxy(t, opts, cells, Hooks{})
	c, _ := dialWS(t, addr, "/echo", keyFor(t, p, "b"))
	if err := p.SetCells(cells[:1]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); closeCode(err) != 1012 {
		t.Fatalf("read after b was removed: %v, want close 1012", err)
	}
}

// TestWebSocketIdleTimeout: a tunnel with no byte either way for
// tunnel_idle_timeout gets close 1001; one where only the upstream talks
// stays open past it.
func TestWebSocketIdleTimeout(t *testing.T) {
	cells, _ := twoWSCells(t)
	opts := wsOptions()
	// Far above the upstream's 20 ms ticks even on a loaded machine under
	// -race (300 ms was not: a tick came late once).
	opts.TunnelIdleTimeout = time.Second
	p, addr := startProxy(t, opts, cells, Hooks{})
	user := keyFor(t, p, "a")

	ticking, _ := dialWS(t, addr, "/tick", user)
	start := time.Now()
	for n := 0; time.Since(start) < 5*opts.TunnelIdleTimeout/2; n++ {
		if _, _, err := ticking.ReadMessage(); err != nil {
			t.Fatalf("tick %d of a tunnel the upstream keeps busy: %v", n, err)
		}
	}

	idle, _ := dialWS(t, addr, "/echo", user)
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := idle.ReadMessage()
	var ce *websocket.CloseError
	if !asCloseError(err, &ce) || ce.Code != 1001 || ce.Text != reasonIdle {
		t.Fatalf("idle tunnel: %v, want close 1001 %q", err, reasonIdle)
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	*ce = c
	return ok
}

// TestWebSocketDrainSends1001: tunnels run on while the proxy drains, and
// get close 1001 when the drain timeout passes; Shutdown then returns.
// A handshake during the drain is refused.
func TestWebSocketDrainSends1001(t *testing.T) {
	cells, _ := twoWSCells(t)
	opts := wsOptions()
	opts.DrainTimeout = 2 * time.Second // room for the echo below on a loaded machine
	p, addr := startProxy(t, opts, cells, Hooks{})
	c, _ := dialWS(t, addr, "/echo", "someone")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	shut := make(chan error, 1)
	start := time.Now()
	go func() { shut <- p.Shutdown(context.Background()) }()
	testwait.For(t, 10*time.Second, "the drain to begin", p.draining.Load)
	if err := c.WriteMessage(websocket.TextMessage, []byte("during the drain")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "during the drain" {
		t.Fatalf("echo during the drain: %q, %v", m, err)
	}
	_, _, err := c.ReadMessage()
	if closeCode(err) != 1001 {
		t.Fatalf("at the end of the drain: %v, want close 1001", err)
	}
	// A lower bound only: the close may come later on a busy machine,
	// never before the drain timeout.
	if d := time.Since(start); d < opts.DrainTimeout {
		t.Fatalf("close 1001 came %v into a drain of %v", d, opts.DrainTimeout)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := p.tunnels.openCount(); n != 0 {
		t.Fatalf("%d tunnels still registered after shutdown", n)
	}
}

// TestWebSocketCountsTowardMaxConns: an open tunnel holds its client
// connection, so it counts toward max_conns until it ends.
func TestWebSocketCountsTowardMaxConns(t *testing.T) {
	cells, _ := twoWSCells(t)
	opts := wsOptions()
	opts.MaxConns = 2
	p, addr := startProxy(t, opts, cells, Hooks{})
	c1, _ := dialWS(t, addr, "/echo", "u1")
	dialWS(t, addr, "/echo", "u2")
	_, resp, err := tryDialWS(addr, "/echo", "u3")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection with max_conns 2: %v (%s), want 503", err, statusOf(resp))
	}
	c1.Close()
	testwait.For(t, 10*time.Second, "the first tunnel to end", func() bool { return p.tunnels.openCount() == 1 })
	testwait.For(t, 10*time.Second, "its connection to close", func() bool { return p.conns.open() == 1 })
	dialWS(t, addr, "/echo", "u3")
}

// TestWebSocketHandshakeFailures: a handshake the upstream refuses reaches
// the client as the upstream's answer; one the proxy cannot complete is a
// 502; each is recorded for the cell's SLIs and counted by status.
func TestWebSocketHandshakeFailures(t *testing.T) {
	up := startWSUpstream(t, "a")
	rec := &statusRecorder{}
	cells := []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.Addr}}}
	p, addr := startProxy(t, wsOptions(), cells, Hooks{Recorder: func(string) CellRecorder { return rec }})

	_, resp, err := tryDialWS(addr, "/deny", "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused handshake: %v (%s), want the upstream's 403", err, statusOf(resp))
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "no websockets for you") {
		t.Fatalf("refusal body %q", b)
	}
	_, resp, err = tryDialWS(addr, "/other", "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upstream switching to another protocol: %v (%s), want 502", err, statusOf(resp))
	}
	if err := p.SetCells([]CellSpec{{Name: "a", Weight: 1, Endpoints: []string{deadAddr(t)}}}); err != nil {
		t.Fatal(err)
	}
	_, resp, err = tryDialWS(addr, "/echo", "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Cellgate-Error") != "upstream-refused" {
		t.Fatalf("dead upstream: %v (%s), want 502 upstream-refused", err, statusOf(resp))
	}
	want := []recorded{{403, false}, {502, true}, {502, true}}
	if got := rec.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	for code, n := range map[string]float64{"403": 1, "502": 2} {
		if v, _ := metric(t, p, "cellgate_tunnels_total", map[string]string{"cell": "a", "code": code}); v != n {
			t.Fatalf("cellgate_tunnels_total{code=%s} = %v, want %v", code, v, n)
		}
	}
	if p.tunnels.openCount() != 0 {
		t.Fatal("a failed handshake left a tunnel registered")
	}
}

// recordingUpstream accepts one connection, keeps the request head it
// reads, and answers with answer.
func recordingUpstream(t *testing.T, answer string) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		head, _ := testh1.ReadHead(br)
		got <- head
		_, _ = io.WriteString(c, answer)
		_, _ = io.Copy(io.Discard, br)
	}()
	return ln.Addr().String(), got
}

// TestH2CUpgradeNotForwarded: an h2c upgrade is never passed on (h2c
// smuggling): the upstream sees neither Upgrade nor HTTP2-Settings, and an
// upstream that switches protocols anyway gets the client a 502, not a
// tunnel. A mixed Upgrade list goes upstream as websocket alone.
func TestH2CUpgradeNotForwarded(t *testing.T) {
	t.Run("h2c", func(t *testing.T) {
		upAddr, got := recordingUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_, addr := startProxy(t, wsOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{upAddr}}}, Hooks{})
		resp := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
		head := <-got
		for _, f := range []string{"upgrade:", "http2-settings:", "connection:"} {
			if strings.Contains(strings.ToLower(head), "\n"+f) {
				t.Errorf("upstream got %q in\n%s", f, head)
			}
		}
		if resp.StatusCode() != fasthttpStatusBadGateway {
			t.Fatalf("upstream switched protocols unasked: client got %d, want 502", resp.StatusCode())
		}
	})
	t.Run("websocket and h2c", func(t *testing.T) {
		upAddr, got := recordingUpstream(t, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		_, addr := startProxy(t, wsOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{upAddr}}}, Hooks{})
		rawRequest(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		head := <-got
		if !strings.Contains(head, "\r\nUpgrade: websocket\r\n") || strings.Contains(head, "h2c") {
			t.Fatalf("upstream got\n%s\nwant Upgrade: websocket alone", head)
		}
		if !strings.HasPrefix(head, "GET /ws HTTP/1.1\r\n") || !strings.Contains(head, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") {
			t.Fatalf("upstream got\n%s", head)
		}
	})
}

const fasthttpStatusBadGateway = 502

// TestWebSocketThroughFrontDoor: behind the front door (which validates
// every byte as HTTP until told otherwise), a client that sends its first
// frame in the same write as the handshake still gets its echo.
func TestWebSocketThroughFrontDoor(t *testing.T) {
	_, addr := startBehindFrontDoor(t, wsOptions(), startWSUpstream(t, "a"), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("pipelined")
	frame := append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...) // masked with a zero key
	req := "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", statusOf(resp), err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	got := make([]byte, hdr[1]&0x7f)
	if _, err := io.ReadFull(br, got); err != nil || hdr[0] != 0x81 || !bytes.Equal(got, msg) {
		t.Fatalf("echo frame %x %q, %v; want text %q", hdr, got, err, msg)
	}
	// And a real client library behind the front door.
	ws, _ := dialWS(t, addr, "/echo", "")
	if err := ws.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte{7}, 100000)); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws.ReadMessage(); err != nil || len(m) != 100000 {
		t.Fatalf("large echo behind the front door: %d bytes, %v", len(m), err)
	}
}

// BenchmarkIsWebSocketUpgrade is the check every GET pays on the request
// path: a plain GET and a WebSocket handshake. It must not allocate.
func BenchmarkIsWebSocketUpgrade(b *testing.B) {
	for _, tc := range []struct{ name, headers string }{
		{"plain", "User-Agent: bench\r\nAccept: */*\r\nX-User-ID: u1\r\nCookie: a=b\r\n"},
		{"websocket", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req, ok := parseRequest("GET /p HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n")
			if !ok {
				b.Fatal("parse")
			}
			want := tc.name == "websocket"
			b.ReportAllocs()
			for b.Loop() {
				if isWebSocketUpgrade(&req.Header) != want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	const ws = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"plain GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"handshake", "GET / HTTP/1.1\r\nHost: x\r\n" + ws + "\r\n", true},
		{"lowercase names and values", "GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: WebSocket\r\n\r\n", true},
		{"Firefox's Connection list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", true},
		{"upgrade list naming websocket", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n", true},
		{"h2c", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", false},
		{"Upgrade without Connection", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", false},
		{"Connection without Upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n", false},
		{"websocket as a substring", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocketx\r\n\r\n", false},
		{"POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + ws + "\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n" + ws + "\r\n", false},
		{"GET with a body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" + ws + "\r\nabc", false},
		{"GET with a chunked body", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + ws + "\r\n3\r\nabc\r\n0\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, ok := parseRequest(tc.raw)
			if !ok {
				t.Fatal("parse")
			}
			if got := isWebSocketUpgrade(&req.Header); got != tc.want {
				t.Fatalf("isWebSocketUpgrade = %v, want %v", got, tc.want)
			}
			// A header built in code has no raw block: same answer (for
			// cases without a body, which a built header does not have).
			if strings.Contains(tc.raw, "Content-Length") || strings.Contains(tc.raw, "Transfer-Encoding") {
				return
			}
			var built fasthttp.RequestHeader
			built.DisableNormalizing()
			built.SetMethodBytes(req.Header.Method())
			built.SetProtocolBytes(req.Header.Protocol())
			for k, v := range req.Header.All() {
				built.AddBytesKV(k, v)
			}
			if got := isWebSocketUpgrade(&built); got != tc.want {
				t.Fatalf("built header: isWebSocketUpgrade = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWebSocketOverTLS: wss through the TLS listener (behind the front
// door, which keeps the TLS state visible): the tunnel works and the
// upstream learns the client came over https.
func TestWebSocketOverTLS(t *testing.T) {
	up := startWSUpstream(t, "a")
	cert, _ := testcert.New(t, "cellgate test")
	_, addr := startBehindFrontDoor(t, wsOptions(), up, cert)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c, _, err := d.Dial("wss://"+addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte(i)}, 1000*i)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d over TLS: %d bytes, %v", i, len(got), err)
		}
	}
	hs := up.LastHandshake()
	if hs.Get("X-Forwarded-Proto") != "https" || !strings.Contains(hs.Get("Forwarded"), "proto=https") {
		t.Fatalf("upstream got X-Forwarded-Proto %q, Forwarded %q; want https", hs.Get("X-Forwarded-Proto"), hs.Get("Forwarded"))
	}
}
