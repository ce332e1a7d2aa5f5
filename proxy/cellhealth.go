package proxy

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cellgate/cellgate/balancer"
	"github.com/valyala/fasthttp"
)

// cellState is whether a cell is down as this node sees it: none of its
// endpoints is in rotation (passive ejection or active checks). It is
// derived from the endpoints and cached here so the request path reads one
// atomic per pick; refresh recomputes it whenever an endpoint's state
// changes, and the request path itself when a passive ejection has run out
// (retryAt), since nothing else marks that moment.
type cellState struct {
	// mu serialises refresh, so the last one to run stores what it read
	// last; the request path never takes it unless the cell is down.
	mu      sync.Mutex
	down    atomic.Bool
	retryAt atomic.Int64 // while down: health-clock ns when an ejection ends (MaxInt64: none)
}

// cellStats are a cell's failover counters. They are kept per cell name
// across reloads, like the recorders.
type cellStats struct {
	// failovers counts requests whose own cell was down, served by a
	// failover cell instead.
	failovers atomic.Uint64
	// inflightFailed counts requests in flight when their cell died, or
	// dropped unanswered by an endpoint (closed or reset before any
	// response byte), that could not be retried (not idempotent and bytes
	// had been sent, or a body had begun to stream).
	inflightFailed atomic.Uint64
	// panics counts requests kept on their down cell because more than
	// routing.failover_panic of the weight was down.
	panics atomic.Uint64
	// deaths counts endpoints of the cell taken out by connection
	// evidence; a request compares it before and after its attempt to
	// learn that the cell was dying under it.
	deaths atomic.Uint64
	// grpc counts the cell's gRPC calls by grpc-status (grpcmetrics.go).
	grpc grpcCounts
	// h2 counts the cell's HTTP/2 requests that are not gRPC calls.
	h2 atomic.Uint64
}

// refresh recomputes whether c is down at now and returns it.
func (c *cell) refresh(now int64) bool {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	down, retry := true, int64(math.MaxInt64)
	for _, e := range c.endpoints {
		if e.availableAt(now) {
			down = false
			break
		}
		if !e.checkDown.Load() {
			retry = min(retry, e.ejectedUntil.Load())
		}
	}
	c.state.retryAt.Store(retry)
	c.state.down.Store(down)
	return down
}

// downAt reports whether c is down at now, re-deriving it once an ejection
// has run out.
func (c *cell) downAt(now int64) bool {
	if !c.state.down.Load() {
		return false
	}
	if now >= c.state.retryAt.Load() {
		return c.refresh(now)
	}
	return true
}

// refreshAll recomputes every cell of the current snapshot (after an
// active check changed an endpoint).
func (p *Proxy) refreshAll() {
	p.mu.Lock() // not racing a snapshot build, which refreshes its own cells
	defer p.mu.Unlock()
	now := p.health.nowNano()
	for _, c := range p.snap.Load().cells {
		c.refresh(now)
	}
}

// statsLocked returns the named cell's counters, creating them on first
// sight. p.mu must be held.
func (p *Proxy) statsLocked(name string) *cellStats {
	s := p.stats[name]
	if s == nil {
		s = &cellStats{}
		p.stats[name] = s
	}
	return s
}

// routeAround is called when the cell a request was routed to (idx) is
// marked down: it returns the key's failover cell — its next choice in the
// same weighted rendezvous order among cells that are up and not the
// target of a running rollout — or idx when there is none or the panic
// threshold holds. Failover bypasses session pins and makes none: the
// table, the weights and the pins are untouched, so the key returns to
// exactly its own cell once that cell is up.
func (p *Proxy) routeAround(st *reqState, snap *snapshot, keyHash uint64, idx int) int {
	now := p.health.nowNano()
	if !snap.cells[idx].downAt(now) {
		return idx
	}
	j := p.failoverCell(snap, keyHash, idx, now)
	if j == idx {
		return idx
	}
	st.failedOver, st.pinCookie = true, false
	snap.cells[idx].stats.failovers.Add(1)
	return j
}

// failoverCell picks the failover cell for keyHash whose cell idx is down,
// or returns idx. It does not allocate: the sets are bitmasks on the stack.
func (p *Proxy) failoverCell(snap *snapshot, keyHash uint64, idx int, now int64) int {
	var skip, down balancer.CellSet
	excl := p.noFailover.Load()
	for i, c := range snap.cells {
		switch {
		case i == idx || c.downAt(now):
			down.Add(i)
			skip.Add(i)
		case excl != nil && slices.Contains(*excl, c.name):
			skip.Add(i)
		}
	}
	t := snap.table
	if t.WeightOf(&down)*100 > p.options().FailoverPanic*t.TotalWeight() {
		snap.cells[idx].stats.panics.Add(1)
		return idx // panic: spread over every cell rather than crush the survivors
	}
	if j := t.PickExcept(keyHash, &skip); j >= 0 {
		return j
	}
	return idx
}

// SetFailoverExcluded names the cells that never receive failover traffic:
// the targets of running rollouts, so a canary's share is what its plan
// says. Their own users still fail over when they are down.
func (p *Proxy) SetFailoverExcluded(cells []string) {
	c := slices.Clone(cells)
	p.noFailover.Store(&c)
}

// CellsUp reports, for every cell of the current snapshot, whether it has
// an endpoint in rotation on this node. Unlike Status it reads nothing
// but the endpoints, so it may be polled.
func (p *Proxy) CellsUp() map[string]bool {
	s := p.snap.Load()
	now := p.health.nowNano()
	out := make(map[string]bool, len(s.cells))
	for _, c := range s.cells {
		out[c.name] = !c.downAt(now)
	}
	return out
}

// CellUp reports whether the named cell has an endpoint in rotation on
// this node (false for an unknown cell).
func (p *Proxy) CellUp(name string) bool {
	s := p.snap.Load()
	now := p.health.nowNano()
	for _, c := range s.cells {
		if c.name == name {
			return !c.downAt(now)
		}
	}
	return false
}

// forwardFailover is forward plus what a dying cell needs for the request
// in flight. When an attempt failed with no response byte and the cell
// lost an endpoint meanwhile — to connection evidence (deaths moved), or
// the endpoint it failed on has failed its active check (a hung endpoint
// times requests out; only the check says it is gone) — the request is
// not simply failed:
//   - one that may have reached the upstream and is not idempotent fails
//     (502) and is counted: nobody can know whether it was executed; so
//     does one whose body had begun to stream (bodies are not buffered,
//     so it cannot be sent again);
//   - otherwise (nothing sent, or idempotent — RFC 9110 §9.2.2 allows
//     repeating those) it goes once to the rest of the cell while the cell
//     has endpoints in rotation, and then, or at once when the cell is
//     down, once to the key's failover cell.
//
// The own cell gets two rounds at most, whatever the evidence of the
// second: an endpoint whose check failed during that round (the cell
// still up by its other, as dead, endpoint) once sent the request to the
// cell a third time and, the rounds spent, answered 502 to a GET its
// failover cell would have served (TestCheckFailsDuringSecondRound).
//
// A request that could not connect (refused, connect timeout: nothing was
// sent) needs no evidence to be repeated: with passive ejection off
// nothing marks the endpoints dead until active checks fail, so it tries
// the rest of the cell once more and then its failover cell, once. Nor
// does a lost one (the connection closed or reset before any response
// byte, no body byte read: roundTrip's lost) that is idempotent: forward
// has already retried it once on another endpoint of the cell in rotation
// if there was one (the ordinary retry rule); when that is lost too — the
// whole cell died under it — or there was none, it goes once to the key's
// failover cell.
// A request dropped so that is not idempotent, or whose body streamed,
// fails (502) and is counted in flight. Either way its cell stays up and
// no endpoint is ejected: this is the request's retry, not a routing
// change (health is the checks' and passive ejection's to decide).
// Any other failure without evidence (a timeout, a 5xx, a response cut
// after its first byte) is answered as is.
func (st *reqState) forwardFailover(ctx *fasthttp.RequestCtx, snap *snapshot, keyHash uint64, idx int) cause {
	for round := 0; ; round++ {
		deaths := st.cell.stats.deaths.Load()
		c := st.forward(ctx)
		if !st.nextRound(c, round, deaths, snap, keyHash, idx, ctx.Method()) {
			return c
		}
	}
}

// nextRound decides, after forward's attempts of round round failed with
// c (deaths: the cell's death count when the round began), whether the
// request goes to another round — the rest of its cell, or its failover
// cell, which it then makes st.cell. Both server cores decide by it.
func (st *reqState) nextRound(c cause, round int, deaths uint64, snap *snapshot, keyHash uint64, idx int, method []byte) bool {
	p := st.p
	if c == causeNone || c == causeBusy || st.respByte || round == maxFailoverRounds-1 {
		return false // answered, or part of an answer arrived: never repeated
	}
	dying := c == causeNoEndpoint || st.cell.stats.deaths.Load() != deaths || st.failedEp.checkFailed()
	unsent := c == causeRefused || c == causeConnectTimeout
	dropped := c == causeReset // with no response byte (above)
	if !dying && !unsent && !dropped {
		return false // an ordinary failure: the cell is not dying
	}
	if sent := c == causeReset || c == causeTimeout; (sent && !idempotent(method)) || st.bodyRead > 0 {
		st.cell.stats.inflightFailed.Add(1) // the body streamed: it cannot be sent again
		return false
	}
	lostOnly := !dying && !unsent // no evidence: the request's one retry elsewhere
	if lostOnly && !st.lost {
		return false // not a connection loss (some other error, no byte answered)
	}
	now := p.health.nowNano()
	if !lostOnly && !st.cell.refresh(now) && round == 0 {
		return true // the rest of the cell first, once
	}
	if st.failedOver {
		return false
	}
	j := p.failoverCell(snap, keyHash, idx, now)
	if j == idx {
		return false
	}
	st.cell.stats.failovers.Add(1)
	st.failedOver, st.pinCookie = true, false
	st.cell = snap.cells[j]
	st.cell.served.Add(1)
	return true
}

// checkFailed reports whether e (nil: no attempt failed) is held out of
// rotation by its active check.
func (e *endpoint) checkFailed() bool { return e != nil && e.checkDown.Load() }

// maxFailoverRounds bounds forward calls per request: its own cell, the
// rest of that cell after an endpoint died, and the failover cell.
const maxFailoverRounds = 3

// unreachable dials ep once (bounded by the connect timeout) and reports
// whether the dial failed: the evidence that turns a reset before any
// response byte into a dead endpoint. It runs only on that failure path.
func (p *Proxy) unreachable(ep *endpoint) bool {
	if p.health.after.Load() <= 0 {
		return false
	}
	c, err := ep.client.Dial(ep.addr)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}
