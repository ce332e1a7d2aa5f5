package proxy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/slo"
	"github.com/valyala/fasthttp"
)

// allocRuns is how many requests each allocation check averages over.
// testing.AllocsPerRun rounds the mean down, so a stray allocation by a
// background goroutine (a health tick, the recorder's collector) during
// the run does not count, while one allocation per request always does.
const allocRuns = 2000

// allocProxy is the proxy the allocation tests measure: two cells on one
// upstream, sticky on a header then the client IP, response headers and a
// recorder on, as the benchmark and the default config have them.
func allocProxy(t *testing.T, body []byte, hooks func(*Hooks), mods ...func(*Options)) (*Proxy, string) {
	t.Helper()
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) })
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceIP}}
	for _, m := range mods {
		m(&opts)
	}
	counters := NewCounters()
	h := Hooks{Recorder: counters.Recorder}
	if hooks != nil {
		hooks(&h)
	}
	p, err := New(opts, 42, []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
		{Name: "b", Version: "v1", Weight: 1, Endpoints: []string{up}},
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx) // stops what New started (tunnel set, checks)
	})
	return p, up
}

// eightFlagsSLO gives h eight boolean flags and the SLO engine's recorders
// for cells and cohorts, as a node with eight [[flag]]s has them: each
// request is assigned, labelled and recorded in eight cohorts.
func eightFlagsSLO(t *testing.T, h *Hooks) {
	reg := slo.NewRegistry(slo.DefaultConfig(), nil)
	e := flags.NewEngine(42, func(name string) flags.Recorder { return reg.Cell(name) })
	t.Cleanup(e.Close)
	var defs []flags.Def
	for i := range 8 {
		defs = append(defs, flags.Def{Name: fmt.Sprint("flag-", i), Variants: []string{"off", "on"}, Weights: []float64{90, 10}, Control: "off", Boolean: true})
	}
	if err := e.SetDefs(defs, nil); err != nil {
		t.Fatal(err)
	}
	h.Recorder = func(cell string) CellRecorder { return reg.Cell(cell) }
	h.Flags = e
}

// TestHandlerAllocs: the request path — key, cell, header hygiene,
// endpoint, upstream round trip, response labelling and recording —
// allocates nothing per proxied HTTP/1.1 request in steady state (the
// quality bar: "the HTTP/1.1 hot path allocates nothing"). The handler is
// called directly on one RequestCtx, so what is counted is the proxy's
// own work plus the in-process upstream server's (which allocates nothing
// either).
func TestHandlerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, tc := range []struct {
		name string
		body int
		hdrs []string
		mods []func(*Options)
		hook func(*Hooks)
	}{
		{name: "keyed", body: 16, hdrs: []string{"X-User-ID", "user-1234"}},
		{name: "by-ip", body: 16},
		{name: "4KiB", body: 4 << 10, hdrs: []string{"X-User-ID", "user-1"}},
		{name: "streamed", body: 200 << 10, hdrs: []string{"X-User-ID", "user-1"}},
		{name: "set-cookie", body: 16, mods: []func(*Options){func(o *Options) { o.SetCookie = true; o.StickyKey = nil }}},
		{name: "flags8-slo", body: 16, hdrs: []string{"X-User-ID", "user-1234"}, hook: func(h *Hooks) { eightFlagsSLO(t, h) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := make([]byte, tc.body)
			p, up := allocProxy(t, body, tc.hook, tc.mods...)
			raw := "GET /bench?x=1 HTTP/1.1\r\nHost: " + up + "\r\nAccept: */*\r\n"
			for i := 0; i+1 < len(tc.hdrs); i += 2 {
				raw += tc.hdrs[i] + ": " + tc.hdrs[i+1] + "\r\n"
			}
			req, ok := parseRequest(raw + "\r\n")
			if !ok {
				t.Fatal("parse")
			}
			var ctx fasthttp.RequestCtx
			ctx.Init2(deadlineConn{}, nil, true)
			req.CopyTo(&ctx.Request)
			var n countWriter // outside the closure: a local would escape per call
			one := func() {
				p.handle(&ctx)
				if sc := ctx.Response.StatusCode(); sc != 200 {
					t.Fatalf("status %d: %s", sc, ctx.Response.Header.Peek("X-Cellgate-Error"))
				}
				// A streamed body is read and closed as the server would.
				n = 0
				if err := ctx.Response.BodyWriteTo(&n); err != nil {
					t.Fatal(err)
				}
				if int(n) != tc.body {
					t.Fatalf("body %d bytes, want %d", n, tc.body)
				}
				ctx.Response.Reset()
			}
			for range 100 { // warm the pools
				one()
			}
			if n := testing.AllocsPerRun(allocRuns, one); n != 0 {
				t.Errorf("%v allocations per proxied request, want 0", n)
			}
		})
	}
}

// TestServedAllocs: the same through the server, over loopback: a client
// connection's request is read by fasthttp through the front-door tracker,
// handled, and answered; the client, proxy and upstream of this process
// together allocate nothing per request.
func TestServedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, size := range []int{16, 4 << 10} {
		t.Run(fmt.Sprintf("body=%d", size), func(t *testing.T) {
			servedAllocs(t, testOptions(), size)
		})
	}
}

// servedAllocs serves GETs of size-byte answers through a proxy with opts
// over two cells, keyed, and fails unless a request allocates nothing in
// steady state (client, proxy and upstream of this process together). It
// returns the proxy after allocRuns+100 requests.
func servedAllocs(t *testing.T, opts Options, size int) *Proxy {
	t.Helper()
	return servedAllocsBody(t, opts, size, nil)
}

// servedAllocsBody is servedAllocs for POSTs of reqBody (GETs when nil).
func servedAllocsBody(t *testing.T, opts Options, size int, reqBody []byte) *Proxy {
	t.Helper()
	body := make([]byte, size)
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) })
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceIP}}
	counters := NewCounters()
	p, addr := startProxy(t, opts, []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
		{Name: "b", Version: "v1", Weight: 1, Endpoints: []string{up}},
	}, Hooks{Recorder: counters.Recorder})
	c := newClient(t, addr)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/bench?x=1")
	req.Header.Set("X-User-ID", "user-1234")
	if reqBody != nil {
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetBody(reqBody)
	}
	resp.KeepBodyBuffer = true // the client's own body buffer is not the proxy's
	one := func() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != size {
			t.Fatalf("err %v, status %d, %d body bytes", err, resp.StatusCode(), len(resp.Body()))
		}
	}
	for range 100 {
		one()
	}
	if n := testing.AllocsPerRun(allocRuns, one); n != 0 {
		t.Errorf("%v allocations per proxied request on core %q (client, proxy and upstream together), want 0", n, opts.Core)
	}
	return p
}

// deadlineConn stands for the client connection of a handler called
// directly: it has a peer address and takes deadlines; nothing reads or
// writes it (the test reads the response from the RequestCtx).
type deadlineConn struct{ net.Conn }

var allocPeer = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000}

func (deadlineConn) RemoteAddr() net.Addr             { return allocPeer }
func (deadlineConn) LocalAddr() net.Addr              { return allocPeer }
func (deadlineConn) SetDeadline(time.Time) error      { return nil }
func (deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// countWriter counts the bytes written to it.
type countWriter int

func (c *countWriter) Write(b []byte) (int, error) { *c += countWriter(len(b)); return len(b), nil }
