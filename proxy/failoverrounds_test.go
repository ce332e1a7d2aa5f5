package proxy

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
)

// TestCheckFailsDuringSecondRound is the sequence a killed cell's GET went
// through under load with active checks only (passive ejection off), seen
// in TestCellFailoverActiveChecksOnly at a load average of 10: both of
// cell b's endpoints refuse the connect (round 1: nothing sent, no
// evidence, so the rest of the cell is tried once more); during that
// second round the check of the endpoint it fails on last fails, while the
// other — as dead, its check not yet due — keeps b up. The request must
// then go to its failover cell, once; it used to be sent to b a third
// time, spending the last round there, and answered 502.
//
// The check's verdict is set by the dial itself (the fourth dial of b's
// endpoints, the second round's last attempt) so the interleaving that
// load made rare is the only one.
func TestCheckFailsDuringSecondRound(t *testing.T) {
	opts := testOptions()     // EjectAfter 0: no passive ejection
	opts.Core = CoreGoroutine // the dial hook below is the goroutine core's pool's
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	a := newKillable(t, cellNamed("a"))
	p, err := New(opts, 42, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{a.addr}},
		{Name: "b", Weight: 1, Endpoints: []string{deadAddr(t), deadAddr(t)}},
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	for _, ep := range p.snap.Load().cells[1].endpoints {
		dial := ep.client.Dial
		ep.client.Dial = func(addr string) (net.Conn, error) {
			if dials.Add(1) == 4 {
				ep.checkDown.Store(true) // its check fails now; the other endpoint keeps b up
			}
			return dial(addr)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck // after the dials are wrapped: Serve's goroutine sees them
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	c := newClient(t, ln.Addr().String())

	tab := p.snap.Load().table
	key := ""
	for u := 0; key == ""; u++ {
		if k := fmt.Sprint("user-", u); tab.PickKey([]byte(k)) == 1 {
			key = k
		}
	}
	r := do(t, c, "GET", "/", nil, "X-User-ID", key)
	st := p.Status()[1]
	t.Logf("GET of b's user %s: %d %q (%s), after %d dials of b; b up=%v, failovers %d",
		key, r.StatusCode(), r.Body(), r.Header.Peek("X-Cellgate-Error"), dials.Load(), st.Up, st.Failovers)
	if r.StatusCode() != 200 || string(r.Body()) != "a" {
		t.Fatalf("GET with b dying under it: %d %q (%s), want 200 from its failover cell a",
			r.StatusCode(), r.Body(), r.Header.Peek("X-Cellgate-Error"))
	}
	if d := dials.Load(); d != 4 {
		t.Fatalf("%d dials of b, want 4 (two rounds of two endpoints): the sequence under test did not happen", d)
	}
	if !st.Up || st.Failovers != 1 {
		t.Fatalf("b up=%v, failovers %d: want b up (one endpoint in rotation) and the request counted once", st.Up, st.Failovers)
	}
}
