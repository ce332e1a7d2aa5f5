//go:build linux

package proxy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestLoopResolveOffLoop: an endpoint written as a host name is looked up
// off the loop. The lookup is held until the test lets it go, and
// meanwhile the loop — the only one — answers another client's request to
// an endpoint given as an address; then the first request is answered by
// the named endpoint. The name is looked up once for the loop: a second
// request to it dials the address found. A lookup that fails is a connect
// that failed (nothing was sent: the request goes to its failover cell)
// and is not kept: the next request looks the name up again.
func TestLoopResolveOffLoop(t *testing.T) {
	a := newKillable(t, cellNamed("a"))
	_, port, err := net.SplitHostPort(a.addr)
	if err != nil {
		t.Fatal(err)
	}
	opts := loopOptions()
	opts.loops = 1
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	p, err := New(opts, 42, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{net.JoinHostPort("upstream-a.test", port)}},
		{Name: "b", Weight: 1, Endpoints: []string{newKillable(t, cellNamed("b")).addr}},
		{Name: "c", Weight: 1, Endpoints: []string{net.JoinHostPort("nowhere.test", port)}},
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	looking := make(chan struct{}, 1)
	var lookups, failed atomic.Int64
	p.lookupIP = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "upstream-a.test" {
			failed.Add(1)
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		lookups.Add(1)
		looking <- struct{}{}
		<-release // not bounded by ctx: a loop held here must not get away after connect_timeout
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	addr := serveProxy(t, p, nil)
	// After serveProxy's, so it runs before the proxy's shutdown: a loop
	// held in the lookup (the property broken) would never stop.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	req := func(cell int) string {
		return "GET / HTTP/1.1\r\nHost: x\r\nX-User-ID: " + keyOf(p, cell) + "\r\nConnection: close\r\n\r\n"
	}
	first := make(chan string, 1)
	go func() { first <- rawExchange(t, addr, req(0), nil) }()
	select {
	case <-looking:
	case <-time.After(20 * time.Second):
		t.Fatal("no lookup of the named endpoint")
	}
	if got := rawExchange(t, addr, req(1), nil); !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\nb") {
		t.Errorf("while a lookup was held: %q, want b's 200", got)
	}
	once.Do(func() { close(release) })
	if got := <-first; !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\na") {
		t.Errorf("the request that waited for the lookup: %q, want a's 200", got)
	}
	if got := rawExchange(t, addr, req(0), nil); !strings.HasSuffix(got, "\r\n\r\na") || lookups.Load() != 1 {
		t.Errorf("second request to the named endpoint: %q after %d lookups, want a's 200 after 1", got, lookups.Load())
	}
	for i := range 2 {
		before := failed.Load()
		got := rawExchange(t, addr, req(2), nil)
		if !strings.HasPrefix(got, "HTTP/1.1 200 ") || strings.Contains(got, "X-Cellgate-Cell: c\r\n") || failed.Load() == before {
			t.Errorf("request %d to a name that does not resolve: %q after %d lookups of it, want its failover cell's 200 after a new lookup",
				i, got, failed.Load()-before)
		}
	}
	if st := p.LoopStats(); st.Handed != 0 {
		t.Errorf("LoopStats %+v: the loop handed requests over", st)
	}
}

// TestLoopReResolve: an address looked up for a host name is dialled for
// resolveFor (the loop's resolve clock is the test's), then looked up
// again in the background: the request that finds it old, and the ones
// after it while the lookup is held, are served from the old address;
// once the lookup is back the new address is dialled. A refresh that
// fails keeps the last address and is not kept itself: the next dial
// looks the name up again. The upstream closes each connection, so every
// request dials, and it answers with the address it was reached at.
func TestLoopReResolve(t *testing.T) {
	port := upstreamOnTwoAddrs(t)
	opts := loopOptions()
	opts.loops = 1
	p, err := New(opts, 42, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{net.JoinHostPort("upstream.test", port)}},
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	p.resolveClock = clock.ns.Load
	type answer struct {
		ips []netip.Addr
		err error
	}
	var ans atomic.Pointer[answer]
	var hold atomic.Pointer[chan struct{}]
	var lookups atomic.Int64
	looking := make(chan struct{}, 16)
	p.lookupIP = func(context.Context, string) ([]netip.Addr, error) {
		lookups.Add(1)
		select {
		case looking <- struct{}{}:
		default: // nobody awaits this one
		}
		if h := hold.Load(); h != nil {
			<-*h // not bounded by ctx: the test lets it go
		}
		a := ans.Load()
		return a.ips, a.err
	}
	setAnswer := func(ip string, err error) {
		if err != nil {
			ans.Store(&answer{err: err})
			return
		}
		ans.Store(&answer{ips: []netip.Addr{netip.MustParseAddr(ip)}})
	}
	addr := serveProxy(t, p, nil)
	released := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(released) }) }
	t.Cleanup(release) // after serveProxy's: runs before the shutdown
	// get returns the address the upstream was reached at ("" for an answer
	// other than a's 200).
	get := func() string {
		t.Helper()
		got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
		_, body, ok := strings.Cut(got, "\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !ok {
			t.Errorf("answer %q, want the upstream's 200", got)
			return ""
		}
		return body
	}
	awaitLookup := func(what string) {
		t.Helper()
		select {
		case <-looking:
		case <-time.After(20 * time.Second):
			t.Fatalf("no lookup %s", what)
		}
	}

	setAnswer("127.0.0.1", nil)
	if got := get(); got != "127.0.0.1" || lookups.Load() != 1 {
		t.Fatalf("first request: from %q after %d lookups, want 127.0.0.1 after 1", got, lookups.Load())
	}
	awaitLookup("at the first dial")
	// Until resolveFor has passed the address is dialled as it is.
	setAnswer("127.0.0.2", nil)
	clock.advance(resolveFor - 1)
	if got := get(); got != "127.0.0.1" || lookups.Load() != 1 {
		t.Errorf("just before resolveFor: from %q after %d lookups, want 127.0.0.1 after 1", got, lookups.Load())
	}

	// resolveFor has passed: the next dial looks the name up again, off
	// the loop, and is served from the old address meanwhile, as are the
	// requests after it while the lookup is held (one lookup only).
	h := released
	hold.Store(&h)
	clock.advance(1)
	if got := get(); got != "127.0.0.1" {
		t.Errorf("the request that found the address old: from %q, want the old 127.0.0.1", got)
	}
	awaitLookup("after resolveFor")
	if got := get(); got != "127.0.0.1" || lookups.Load() != 2 {
		t.Errorf("while the new lookup is held: from %q after %d lookups, want the old 127.0.0.1 after 2", got, lookups.Load())
	}
	hold.Store(nil)
	release()
	// Once its result reaches the loop, the new address is dialled.
	testwait.For(t, 20*time.Second, "a request served from the new address", func() bool {
		got := get()
		if got != "127.0.0.1" && got != "127.0.0.2" {
			t.Fatalf("after the new lookup: from %q", got)
		}
		return got == "127.0.0.2"
	})
	if got := get(); got != "127.0.0.2" || lookups.Load() != 2 {
		t.Errorf("after the new lookup: from %q after %d lookups, want 127.0.0.2 after 2", got, lookups.Load())
	}

	// A refresh that fails: the last address is dialled still, and the
	// failure is not kept — the next dial looks up again.
	setAnswer("", &net.DNSError{Err: "server misbehaving", Name: "upstream.test", IsTemporary: true})
	clock.advance(resolveFor)
	testwait.For(t, 20*time.Second, "a second lookup after a failed one", func() bool {
		if got := get(); got != "127.0.0.2" {
			t.Fatalf("while lookups fail: from %q, want the last address 127.0.0.2", got)
		}
		return lookups.Load() >= 4
	})
	// And the next lookup that succeeds is used.
	setAnswer("127.0.0.1", nil)
	testwait.For(t, 20*time.Second, "a request served from the address looked up after the failures", func() bool {
		got := get()
		if got != "127.0.0.1" && got != "127.0.0.2" {
			t.Fatalf("after the failures: from %q", got)
		}
		return got == "127.0.0.1"
	})
	if st := p.LoopStats(); st.Handed != 0 {
		t.Errorf("LoopStats %+v: the loop handed requests over", st)
	}
}

// upstreamOnTwoAddrs serves HTTP/1.1 on 127.0.0.1 and 127.0.0.2 at the
// same port (returned), answering each request with the address it
// reached and closing the connection.
func upstreamOnTwoAddrs(t *testing.T) string {
	t.Helper()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetConnectionClose()
		ctx.SetBodyString(ctx.LocalIP().String())
	}}
	for range 20 {
		ln1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln1.Addr().String())
		ln2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
		if err != nil { // the port is taken on 127.0.0.2: another one
			ln1.Close()
			continue
		}
		go func() { _ = srv.Serve(ln1) }()
		go func() { _ = srv.Serve(ln2) }()
		t.Cleanup(func() { _ = srv.Shutdown() })
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return ""
}
