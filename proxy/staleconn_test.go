package proxy

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testh1"
)

// idleCloser is a loopback upstream that answers one request per
// connection without announcing a close (the proxy pools the connection)
// and then closes it, as an upstream whose keep-alive timeout ran out
// does. closed receives once per connection closed after an answer.
type idleCloser struct {
	addr   string
	hits   atomic.Int64
	closed chan struct{}
}

func newIdleCloser(t *testing.T) *idleCloser {
	t.Helper()
	u := &idleCloser{closed: make(chan struct{}, 16)}
	u.addr = serveRaw(t, func(c net.Conn) {
		defer c.Close()
		if _, err := testh1.ReadHead(bufio.NewReader(c)); err != nil {
			return
		}
		u.hits.Add(1)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
		_ = c.Close() // a FIN while the proxy keeps the connection idle
		u.closed <- struct{}{}
	})
	return u
}

// waitClosed waits until the upstream has closed the connection it
// answered on, so the next request finds it stale in the proxy's pool.
func (u *idleCloser) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-u.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not close its connection")
	}
}

// raceCloser is a loopback upstream that answers the first request on each
// connection without announcing a close (the proxy pools the connection),
// then reads the next request and closes the connection without a byte of
// answer — a FIN, or a reset with reset set — as an upstream whose
// keep-alive timeout ran out just as the proxy reused the connection does.
// Nothing tells the proxy in advance: the connection is open and quiet
// while it sits in the pool (the loop core drops idle connections whose
// close it has seen; this one it cannot see). hits counts the requests it
// read.
type raceCloser struct {
	addr string
	hits atomic.Int64
}

func newRaceCloser(t *testing.T, reset bool) *raceCloser {
	t.Helper()
	u := &raceCloser{}
	u.addr = serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := testh1.ReadHead(br); err != nil {
			return // passive health's confirming dial, or the proxy's shutdown
		}
		u.hits.Add(1)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
		if _, err := testh1.ReadHead(br); err != nil {
			return
		}
		u.hits.Add(1)
		if reset {
			_ = c.(*net.TCPConn).SetLinger(0) // the close sends RST
		}
	})
	return u
}

// ejectCounter is a log handler counting "endpoint ejected" records:
// passive health's evidence, which the repeat's success would clear from
// the endpoint's own counters.
type ejectCounter struct{ n *atomic.Int64 }

func (h ejectCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h ejectCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "endpoint ejected" {
		h.n.Add(1)
	}
	return nil
}
func (h ejectCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h ejectCounter) WithGroup(string) slog.Handler      { return h }

// TestStaleKeepAliveRace: the upstream closes (or resets) a pooled
// keep-alive connection right after reading the request sent on it, before
// any response byte — the race no check before reuse can close. An
// idempotent request is repeated once on a fresh connection to the same
// endpoint (the cell has no other and no failover cell) and answered 200,
// the upstream having read it twice; the loss is no evidence against the
// endpoint (eject_after = 1: no ejection logged). A bodiless POST lost the
// same way is answered 502 upstream-reset, the upstream having read it
// once. Both cores (make test runs it again with -proxy.core=loop).
func TestStaleKeepAliveRace(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		reset        bool
		status       int
		hits         int64 // requests the upstream read, the first GET's included
	}{
		{"GET-closed", "GET", false, 200, 3},
		{"GET-reset", "GET", true, 200, 3},
		{"HEAD-closed", "HEAD", false, 200, 3},
		{"POST-closed", "POST", false, 502, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRaceCloser(t, tc.reset)
			var ejected atomic.Int64
			opts := testOptions()
			opts.EjectAfter = 1
			p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.addr}}},
				Hooks{Logger: slog.New(ejectCounter{&ejected})})
			c := newClient(t, addr) // one connection: on the loop core, one loop and its pool
			if r := do(t, c, "GET", "/", nil); r.StatusCode() != 200 {
				t.Fatalf("first GET: %d", r.StatusCode())
			}
			r := do(t, c, tc.method, "/", nil)
			if r.StatusCode() != tc.status || up.hits.Load() != tc.hits {
				t.Fatalf("%s on a pooled connection the upstream closed after reading it: %d %s, upstream read %d requests; want %d and %d",
					tc.method, r.StatusCode(), r.Header.Peek("X-Cellgate-Error"), up.hits.Load(), tc.status, tc.hits)
			}
			if tc.status == 502 && string(r.Header.Peek("X-Cellgate-Error")) != "upstream-reset" {
				t.Errorf("%s lost: X-Cellgate-Error %q, want upstream-reset", tc.method, r.Header.Peek("X-Cellgate-Error"))
			}
			if tc.status == 200 && (ejected.Load() != 0 || !p.CellUp("a")) {
				t.Errorf("the repeated %s was evidence against the endpoint: %d ejections logged, cell up %v", tc.method, ejected.Load(), p.CellUp("a"))
			}
		})
	}
}

// TestStaleKeepAliveRetried: a request sent on a pooled keep-alive
// connection that the upstream closed while it sat idle is repeated once
// on a fresh connection to the same endpoint when it is idempotent — even
// when the cell has no other endpoint and no failover cell — and the loss
// is no evidence against the endpoint (eject_after = 1 would take the only
// endpoint out). A bodiless POST lost that way is answered 502 by the
// goroutine core, as a request that may have been read: nobody can know
// (the loop core drops an idle connection whose close it saw, so it sends
// the POST once, on a fresh connection; TestStaleKeepAliveRace closes the
// connection where neither core can see it coming).
func TestStaleKeepAliveRetried(t *testing.T) {
	t.Run("GET", func(t *testing.T) {
		up := newIdleCloser(t)
		opts := testOptions()
		opts.EjectAfter = 1
		p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.addr}}}, Hooks{})
		c := newClient(t, addr)
		for i := range 4 {
			r := do(t, c, "GET", "/", nil)
			if r.StatusCode() != 200 || string(r.Body()) != "ok" {
				t.Fatalf("GET %d after the upstream closed its idle connection: %d %q (%s), want 200 \"ok\"",
					i, r.StatusCode(), r.Body(), r.Header.Peek("X-Cellgate-Error"))
			}
			up.waitClosed(t)
		}
		if n := up.hits.Load(); n != 4 {
			t.Fatalf("the upstream read %d requests, want 4 (each once)", n)
		}
		if !p.CellUp("a") {
			t.Fatal("the endpoint was ejected for closing an idle keep-alive connection")
		}
	})
	t.Run("POST", func(t *testing.T) {
		up := newIdleCloser(t)
		opts := testOptions()
		_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.addr}}}, Hooks{})
		c := newClient(t, addr)
		if r := do(t, c, "GET", "/", nil); r.StatusCode() != 200 {
			t.Fatalf("first GET: %d", r.StatusCode())
		}
		up.waitClosed(t)
		r := do(t, c, "POST", "/", nil) // bodiless: only the method keeps it from a repeat
		switch {
		case opts.Core != CoreLoop && (r.StatusCode() != 502 || up.hits.Load() != 1):
			// The goroutine core sends it on the stale pooled connection.
			t.Fatalf("POST on a stale connection: %d, upstream read %d requests; want 502 and 1 (not repeated)", r.StatusCode(), up.hits.Load())
		case r.StatusCode() == 200 && up.hits.Load() != 2:
			// The loop core saw the close while the connection sat in
			// its pool and dropped it: the POST is sent once, fresh.
			t.Fatalf("POST answered 200 but the upstream read %d requests", up.hits.Load())
		}
		t.Logf("POST on a stale connection: %d %s (upstream read %d requests)", r.StatusCode(), r.Header.Peek("X-Cellgate-Error"), up.hits.Load())
	})
}
