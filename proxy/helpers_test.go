package proxy

import (
	"bufio"
	"context"
	"flag"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startUpstream runs a fasthttp server on 127.0.0.1:0 that keeps header
// names as sent, and returns its address.
func startUpstream(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h, DisableHeaderNamesNormalizing: true, IdleTimeout: 30 * time.Second}
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// serveRaw accepts connections on 127.0.0.1:0 until the test ends and
// runs handle on each in its own goroutine; it returns the address. Raw
// upstreams built on it send exactly the bytes a test scripts (broken
// framing, resets, early closes), which a real server would not.
func serveRaw(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// okUpstream answers 200 "ok" and counts requests.
func okUpstream(t testing.TB, n *atomic.Int64) string {
	t.Helper()
	return startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		if n != nil {
			n.Add(1)
		}
		ctx.SetBodyString("ok")
	})
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proxyCore is the server core the proxy tests run on (make test runs the
// core-sensitive ones a second time with -proxy.core=loop).
var proxyCore = flag.String("proxy.core", CoreGoroutine, `server core for the proxy tests: "goroutine" or "loop"`)

// testOptions are DefaultOptions with short timeouts and no ejection, on
// the core -proxy.core names.
func testOptions() Options {
	o := DefaultOptions()
	o.Core = *proxyCore
	o.ConnectTimeout = time.Second
	o.UpstreamReadTimeout = 5 * time.Second
	o.DrainTimeout = 5 * time.Second
	o.EjectAfter = 0
	o.StickyKey = nil
	return o
}

// startProxy builds and serves a proxy on 127.0.0.1:0.
func startProxy(t testing.TB, opts Options, cells []CellSpec, hooks Hooks) (*Proxy, string) {
	t.Helper()
	p, err := New(opts, 42, cells, hooks)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		if opts.Core == CoreLoop {
			t.Logf("loop core: %+v", p.LoopStats())
		}
	})
	return p, ln.Addr().String()
}

// newClient returns a client for the proxy that keeps header names as sent.
// Its idle connections are closed when the test ends, before the proxy's
// shutdown (cleanups run last-registered first, and a test makes its client
// after its proxy): a drain keeps idle keep-alive connections open for its
// grace (drainIdleGrace, half of testOptions' DrainTimeout), which every
// test would otherwise wait out.
func newClient(t testing.TB, addr string) *fasthttp.HostClient {
	c := &fasthttp.HostClient{
		Addr: addr, DisableHeaderNamesNormalizing: true, ReadTimeout: 10 * time.Second,
		MaxIdemponentCallAttempts: 1,
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// httpClient is a net/http client whose idle connections are closed when
// the test ends, before the proxy's shutdown (see newClient).
func httpClient(t testing.TB) *http.Client {
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get sends a GET with extra headers and returns the response (released by
// the test's cleanup).
func get(t testing.TB, c *fasthttp.HostClient, path string, hdrs ...string) *fasthttp.Response {
	t.Helper()
	return do(t, c, "GET", path, nil, hdrs...)
}

func do(t testing.TB, c *fasthttp.HostClient, method, path string, body []byte, hdrs ...string) *fasthttp.Response {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), &fasthttp.Response{}
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + c.Addr + path)
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.Header.Set(hdrs[i], hdrs[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := c.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// rawRequest writes raw bytes on a fresh connection and returns the parsed
// response (header names as sent).
func rawRequest(t testing.TB, addr, raw string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	resp.Header.DisableNormalizing()
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp
}

// headerLines flattens a request header into "Name: value" lines as stored.
func headerLines(h *fasthttp.RequestHeader) []string {
	var out []string
	for k, v := range h.All() {
		out = append(out, string(k)+": "+string(v))
	}
	return out
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(prefix)) {
			return true
		}
	}
	return false
}
