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

	"github.com/cellgate/cellgate/balancer"
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
