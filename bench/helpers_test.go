package bench

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServer serves h on a loopback port and returns its base URL.
func startServer(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: h, NoDefaultDate: true, NoDefaultContentType: true}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String() + "/"
}

// serveRaw accepts connections on a loopback port and runs handle on each
// in its own goroutine until the test ends, then waits for them; it
// returns the base URL. Raw servers send exactly the bytes a test scripts.
func serveRaw(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { handle(c) })
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// okHandler answers 200 with a small body.
func okHandler(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok\n") }

// delayHandler answers after d, a fake upstream with a known latency.
func delayHandler(d time.Duration) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		time.Sleep(d)
		ctx.SetBodyString("ok\n")
	}
}

// testConfig is a short run against url.
func testConfig(url string) Config {
	c := DefaultConfig()
	c.URL = url
	c.Warmup = 0
	c.Duration = 500 * time.Millisecond
	c.Connections = 4
	c.Timeout = 2 * time.Second
	c.Interval = 100 * time.Millisecond
	return c
}

// refusedURL is a loopback URL where nothing listens: port 1 (tcpmux) is
// privileged and unused, unlike a just-freed ephemeral port that another
// process on this shared machine may take at once.
const refusedURL = "http://127.0.0.1:1/"
