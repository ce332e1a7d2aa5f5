package proxy

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// endpoint is one upstream address of a cell: its keep-alive pool and the
// counters endpoint choice and passive health read. An endpoint outlives the
// snapshots that point to it: a reload that keeps the address keeps the
// endpoint, its connections and its health.
type endpoint struct {
	addr   string
	client *fasthttp.HostClient
	// h2 carries the requests of an HTTP/2 cell (h2upstream.go); nil for
	// HTTP/1.1 cells.
	h2 *http2.Transport
	// h2Open counts h2's open connections against MaxConnsPerEndpoint
	// (h2conns.go).
	h2Open atomic.Int64

	// outstanding counts requests between endpoint choice and the end of
	// the response body; power of two choices compares it.
	outstanding atomic.Int64
	// fails counts consecutive connect failures and 5xx responses.
	fails atomic.Int32
	// ejections counts ejections since the last success; it doubles the
	// backoff.
	ejections atomic.Int32
	// ejectedUntil is the health clock's UnixNano before which the endpoint
	// is out of rotation; zero when it is in.
	ejectedUntil atomic.Int64
	// removed is set when a reload drops the endpoint, so drain can close it.
	removed atomic.Bool
	// checkDown is set by active health checks (healthcheck.go) after
	// `unhealthy` failed checks in a row and cleared after `healthy`
	// passing ones; it has no expiry of its own.
	checkDown atomic.Bool
	// check is the endpoint's running active check (nil: passive only);
	// guarded by Proxy.mu.
	check *checker
	// probing is set while a readmission probe runs (readmit.go); dead
	// while connection evidence holds the endpoint out, until a success.
	probing atomic.Bool
	dead    atomic.Bool

	// loopConns counts the loop core's upstream connections to the
	// endpoint (loopup.go), which max_conns_per_endpoint caps together
	// with client's; loopGen moves when closeIdle asks the loops to close
	// their idle ones too.
	loopConns atomic.Int64
	loopGen   atomic.Uint32
}

// newEndpoint builds an endpoint with its pool configured from opts; dial
// opens its connections (the proxy's dial reads the current connect
// timeout, so a reload applies it to the next connection).
//
// fasthttp's own retry is switched off (RetryIfErr refuses): it would re-send
// GET/HEAD/PUT up to five times on most errors, including after bytes reached
// the upstream. The proxy decides retries itself, once, on another endpoint.
func newEndpoint(addr string, opts *Options, dial fasthttp.DialFunc) *endpoint {
	return &endpoint{
		addr: addr,
		client: &fasthttp.HostClient{
			Addr:                          addr,
			Dial:                          dial,
			MaxConns:                      opts.MaxConnsPerEndpoint,
			MaxIdleConnDuration:           opts.MaxIdleConnDuration,
			ReadTimeout:                   opts.UpstreamReadTimeout,
			WriteTimeout:                  opts.UpstreamWriteTimeout,
			MaxIdemponentCallAttempts:     1,
			RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			NoDefaultUserAgentHeader:      true,
			ConnPoolStrategy:              fasthttp.LIFO, // warm connections first; idle ones expire
		},
	}
}

// available reports whether the endpoint is in rotation at now (UnixNano of
// the health clock). The clock is read only when the endpoint was ejected.
func (e *endpoint) available(now func() int64) bool {
	if e.checkDown.Load() {
		return false
	}
	until := e.ejectedUntil.Load()
	return until == 0 || now() >= until
}

// availableAt is available with the time already read.
func (e *endpoint) availableAt(now int64) bool {
	if e.checkDown.Load() {
		return false
	}
	until := e.ejectedUntil.Load()
	return until == 0 || now >= until
}

// health is the passive-health policy shared by a proxy's endpoints. Its
// thresholds are atomics so a reload (SetOptions) changes them for the
// next failure without a lock on the request path.
type health struct {
	after      atomic.Int32
	backoff    atomic.Int64 // time.Duration
	backoffMax atomic.Int64 // time.Duration
	// maxEjectPct caps the share of a cell's endpoints that 5xx responses
	// may eject (upstream.max_ejection_percent); connection failures are
	// not capped.
	maxEjectPct atomic.Int32
	now         func() time.Time
}

// set installs the ejection policy of o (EjectBackoffMax already derived).
func (h *health) set(o *Options) {
	h.after.Store(int32(o.EjectAfter))
	h.backoff.Store(int64(o.EjectBackoff))
	h.backoffMax.Store(int64(o.EjectBackoffMax))
	h.maxEjectPct.Store(int32(o.MaxEjectionPercent))
}

// nowNano reads the health clock.
func (h *health) nowNano() int64 { return h.now().UnixNano() }

// success records a response that was not a failure. It writes only when
// there is something to reset, so healthy endpoints keep their cache lines
// shared between CPUs.
func (h *health) success(e *endpoint) {
	if e.fails.Load() != 0 {
		e.fails.Store(0)
	}
	if e.ejections.Load() != 0 {
		e.ejections.Store(0)
	}
	if e.ejectedUntil.Load() != 0 {
		e.ejectedUntil.Store(0)
	}
	if e.dead.Load() {
		e.dead.Store(false)
	}
}

// failure records a 5xx (or a failure after the request may have been
// read) and ejects the endpoint once the consecutive count reaches the
// threshold, unless that would take more than max_ejection_percent of
// the cell's endpoints out. It reports whether it ejected.
func (h *health) failure(c *cell, e *endpoint) bool {
	after := h.after.Load()
	if after <= 0 || e.fails.Add(1) < after {
		return false
	}
	e.fails.Store(0)
	if c != nil && !h.mayEject(c) {
		return false
	}
	h.eject(e)
	return true
}

// connFailure records a connection failure (refused, connect timeout,
// reset before any response byte): the endpoint cannot be reached, so it
// is taken out at once, whatever the cap (ejection off: never).
func (h *health) connFailure(e *endpoint) bool {
	if h.after.Load() <= 0 {
		return false
	}
	e.fails.Store(0)
	h.eject(e)
	e.dead.Store(true)
	return true
}

// mayEject reports whether one more of c's endpoints may be ejected for
// 5xx: at most max_ejection_percent of them, and — as Envoy's outlier
// detection does — at least one whatever the percentage, so a
// one-endpoint cell can still be taken out.
func (h *health) mayEject(c *cell) bool {
	n := len(c.endpoints)
	out := 0
	now := h.nowNano()
	for _, o := range c.endpoints {
		if !o.availableAt(now) {
			out++
		}
	}
	return out == 0 || (out+1)*100 <= int(h.maxEjectPct.Load())*n
}

// eject takes e out of rotation for the next backoff, doubled for each
// ejection since its last success.
func (h *health) eject(e *endpoint) {
	n := e.ejections.Add(1)
	d, dmax := time.Duration(h.backoff.Load()), time.Duration(h.backoffMax.Load())
	for i := int32(1); i < n && d < dmax; i++ {
		d *= 2
	}
	d = min(d, dmax)
	e.ejectedUntil.Store(h.now().Add(d).UnixNano())
}

// closeIdle closes the endpoint's idle upstream connections, of either
// protocol.
func (e *endpoint) closeIdle() {
	e.loopGen.Add(1)
	e.client.CloseIdleConnections()
	if e.h2 != nil {
		e.h2.CloseIdleConnections()
	}
}
