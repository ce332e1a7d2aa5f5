package bench

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Request timeouts are enforced by a watchdog rather than by per-request
// socket deadlines: fasthttp's DoTimeout reads the clock four times and
// re-arms two runtime timers per request, about a tenth of the generator's
// CPU in profiles against a fast upstream. The watchdog looks at every
// connection a few times per timeout and expires the socket of a request
// that has run too long, so a timeout fires between Timeout and
// Timeout×(1+1/watchdogChecks) after the send.
const watchdogChecks = 8

// expiredMark in connGuard.inflight says the watchdog expired the request.
const expiredMark = -1

// connGuard is one worker's view for the watchdog: the live connection and
// when its request went out. The watchdog claims a stuck request by
// swapping its send time for expiredMark, so it can never expire the next
// request by mistake; the worker sees the mark when it takes the slot back.
type connGuard struct {
	// mu guards conn, and orders the watchdog's claim with a new dial.
	mu   sync.Mutex
	conn net.Conn

	inflight atomic.Int64 // send time+1 (ns since the run started); 0 = idle
}

// dialer returns a HostClient Dial function that records the connection.
// A connection dialled for an already expired request is expired at once.
func (g *connGuard) dialer(timeout time.Duration) fasthttp.DialFunc {
	return func(addr string) (net.Conn, error) {
		c, err := fasthttp.DialTimeout(addr, timeout)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		g.conn = c
		if g.inflight.Load() == expiredMark {
			_ = c.SetDeadline(time.Unix(1, 0))
		}
		g.mu.Unlock()
		return c, nil
	}
}

// begin marks a request sent at sent (since the run started) as in flight.
func (g *connGuard) begin(sent time.Duration) { g.inflight.Store(int64(sent) + 1) }

// end marks the request done and reports whether the watchdog expired it.
func (g *connGuard) end() (expired bool) { return g.inflight.Swap(0) == expiredMark }

// expireIfStill expires the request stamped since if it is still in flight:
// its blocked read or write fails with a timeout.
func (g *connGuard) expireIfStill(since int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.inflight.CompareAndSwap(since, expiredMark) {
		return
	}
	if g.conn != nil {
		_ = g.conn.SetDeadline(time.Unix(1, 0))
	}
}

// watchdog expires requests older than the timeout until stop is closed.
func (r *runner) watchdog(guards []*connGuard, stop <-chan struct{}) {
	period := max(r.cfg.Timeout/watchdogChecks, 5*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	limit := int64(r.cfg.Timeout)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := int64(r.since())
		for _, g := range guards {
			if since := g.inflight.Load(); since > 0 && now-(since-1) > limit {
				g.expireIfStill(since)
			}
		}
	}
}
