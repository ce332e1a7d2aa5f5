package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestH2ConnCap: MaxConnsPerEndpoint caps an HTTP/2 endpoint's
// connections. The upstream allows one stream per connection and holds
// the first request; a second needs another connection, which the cap of
// one refuses: 503 upstream-busy, and the upstream saw one connection.
// Once the first is answered the connection serves again.
func TestH2ConnCap(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		w.Header().Set("X-Proto", r.Proto)
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1}
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	opts := testOptions()
	opts.MaxConnsPerEndpoint = 1
	_, addr := startEdge(t, opts, []CellSpec{{Name: "h", Version: "v1", Weight: 1, Protocol: ProtoH2C,
		Endpoints: []string{up.Listener.Addr().String()}}}, Hooks{}, nil)

	held := make(chan int, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			held <- -1
			return
		}
		defer c.Close()
		r := rawRequestOn(c, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
		held <- r
	}()
	<-entered // the one connection's one stream is taken
	r := rawRequest(t, addr, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	if r.StatusCode() != 503 || string(r.Header.Peek("X-Cellgate-Error")) != "upstream-busy" {
		t.Errorf("second request past the cap: %d %q, want 503 upstream-busy", r.StatusCode(), r.Header.Peek("X-Cellgate-Error"))
	}
	close(release)
	if code := <-held; code != 200 {
		t.Fatalf("held request: %d, want 200", code)
	}
	r = rawRequest(t, addr, "GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
	if r.StatusCode() != 200 || string(r.Header.Peek("X-Proto")) != "HTTP/2.0" {
		t.Errorf("after the held one: %d %q, want 200 over HTTP/2", r.StatusCode(), r.Header.Peek("X-Proto"))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 (the cap)", n)
	}
}

// rawRequestOn writes raw on c and returns the answer's status, or -1.
func rawRequestOn(c net.Conn, raw string) int {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		return -1
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return -1
	}
	return resp.StatusCode()
}
