// Package wsecho runs a real WebSocket upstream — gorilla/websocket's
// server, not cellgate's code — on loopback for tests of the proxy's
// WebSocket tunnels. Only tests import it, so the library stays out of the
// cellgate binary.
//
// Paths:
//   - /echo echoes every message;
//   - /push sends numbered binary messages of varied sizes (up to 70 000
//     bytes, so all three frame length encodings occur) as fast as it can;
//   - /tick sends a text message every 20 ms;
//   - /deny answers the handshake 403 with a short body;
//   - /other answers 101 but switches to a protocol that is not websocket;
//   - /page is an HTML page whose script opens a WebSocket to /echo on the
//     page's own origin, echoes ?n= messages (default 20, growing by 100
//     bytes each) and writes the outcome into <body data-result="…">
//     (progress in data-open and data-got), for a browser test;
//   - /hold?n=N answers once N /echo connections have ended (at most 30 s):
//     the page loads it in an iframe, so its load event (when a headless
//     browser's --dump-dom prints the DOM) waits for the WebSocket;
//   - anything else is a plain 200 "plain NAME" (or the status set with
//     SetPlainStatus, to fail a cell's ordinary requests).
//
// Every handshake answer carries X-Upstream: NAME.
package wsecho

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Server is one upstream. Close it when done.
type Server struct {
	Name string
	Addr string // host:port

	srv   *httptest.Server
	plain atomic.Int32 // status of plain requests; 0: 200

	mu         sync.Mutex
	handshakes []http.Header // guarded by mu
	closes     []int         // close codes received from clients; guarded by mu
	echoes     int           // /echo connections ended; guarded by mu
	echoEnded  chan struct{} // closed (and replaced) when one ends; guarded by mu
}

// Start serves on 127.0.0.1:0.
func Start(name string) *Server {
	s := &Server{Name: name, echoEnded: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.Addr = strings.TrimPrefix(s.srv.URL, "http://")
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/deny":
		http.Error(w, "no websockets for you", http.StatusForbidden)
		return
	case "/other":
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "foo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		return
	case "/hold":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		s.hold(r.Context(), n)
		_, _ = io.WriteString(w, "done")
		return
	case "/page":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
		return
	case "/echo", "/push", "/tick":
	default:
		if code := s.plain.Load(); code != 0 {
			w.WriteHeader(int(code))
		}
		fmt.Fprintf(w, "plain %s", s.Name)
		return
	}
	s.mu.Lock()
	s.handshakes = append(s.handshakes, r.Header.Clone())
	s.mu.Unlock()
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, http.Header{"X-Upstream": {s.Name}})
	if err != nil {
		return
	}
	defer c.Close()
	c.SetCloseHandler(func(code int, _ string) error {
		s.mu.Lock()
		s.closes = append(s.closes, code)
		s.mu.Unlock()
		msg := websocket.FormatCloseMessage(code, "")
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		return nil
	})
	switch r.URL.Path {
	case "/echo":
		echo(c)
		s.mu.Lock()
		s.echoes++
		close(s.echoEnded)
		s.echoEnded = make(chan struct{})
		s.mu.Unlock()
	case "/push":
		go discardReads(c)
		for i := uint32(0); ; i++ {
			if err := c.WriteMessage(websocket.BinaryMessage, PushMessage(i)); err != nil {
				return
			}
		}
	case "/tick":
		go discardReads(c)
		for i := 0; ; i++ {
			if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("tick ", i))); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // the upstream's own pace
		}
	}
}

// page echoes n messages (of 10 to 100·n bytes, so every frame length
// encoding occurs) over a WebSocket to its own origin and reports
// "ok N" (every echo matched), "mismatch I", "error" or "closed CODE" in
// body[data-result].
const page = `<!doctype html>
<html><head><title>wsecho</title></head><body data-result="pending">
<script>
const n = Number(new URLSearchParams(location.search).get("n") || 20);
const ws = new WebSocket("ws://" + location.host + "/echo");
let got = 0;
const done = (r) => { if (document.body.dataset.result === "pending") document.body.dataset.result = r; };
const msg = (i) => "message " + i + " " + "x".repeat(i * 100);
ws.onopen = () => { document.body.dataset.open = "yes"; for (let i = 0; i < n; i++) ws.send(msg(i)); };
ws.onmessage = (e) => {
  if (e.data !== msg(got)) { done("mismatch " + got); return; }
  document.body.dataset.got = ++got;
  if (got === n) { done("ok " + got); ws.close(1000); }
};
ws.onerror = () => done("error");
ws.onclose = (e) => done("closed " + e.code);
</script><iframe src="/hold?n=1"></iframe></body></html>
`

// hold waits until n /echo connections have ended, ctx ends, or 30 s pass.
func (s *Server) hold(ctx context.Context, n int) {
	limit := time.NewTimer(30 * time.Second)
	defer limit.Stop()
	for {
		s.mu.Lock()
		done, ch := s.echoes >= n, s.echoEnded
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-limit.C:
			return
		}
	}
}

func echo(c *websocket.Conn) {
	for {
		mt, m, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, m); err != nil {
			return
		}
	}
}

// discardReads reads (and so answers control frames) until the connection
// ends.
func discardReads(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// pushSizes cycle through all three frame length encodings.
var pushSizes = []int{4, 125, 126, 300, 65535, 65536, 70000, 17}

// PushMessage is message i of /push: its number, then a byte pattern
// derived from it, so a message cut or spliced anywhere is detected.
func PushMessage(i uint32) []byte {
	n := pushSizes[int(i)%len(pushSizes)]
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, i)
	for j := 4; j < n; j++ {
		b[j] = byte(i) + byte(j)
	}
	return b
}

// SetPlainStatus makes plain (non-WebSocket) requests get status code;
// 0 restores 200. Handshakes are not affected.
func (s *Server) SetPlainStatus(code int) { s.plain.Store(int32(code)) }

// LastHandshake is the header of the latest WebSocket handshake received
// (nil before any).
func (s *Server) LastHandshake() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.handshakes) == 0 {
		return nil
	}
	return s.handshakes[len(s.handshakes)-1]
}

// CloseCodes are the close codes received from clients, in order.
func (s *Server) CloseCodes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.closes...)
}
