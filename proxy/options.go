// Package proxy is cellgate's data plane: a fasthttp server that routes each
// request to a cell by weighted sticky hashing (package balancer), picks an
// endpoint inside the cell by power of two choices, forwards the request on a
// keep-alive pool, streams the response back and reports the outcome to a
// per-cell recorder.
//
// Read-mostly state (the routing table, the cells and their endpoint pools)
// is an immutable snapshot behind one atomic pointer: SetWeights and SetCells
// build a new snapshot beside the old and swap it, so the request path takes
// no lock. Per-endpoint counters (outstanding requests, passive health) are
// atomics on endpoints that survive a reload. The per-request options are a
// second immutable snapshot that SetOptions replaces (settings.go); the
// fasthttp Server is rebuilt beside the old one when its own fields change
// (servers.go).
package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/spans"
)

// Options configures a Proxy. Start from DefaultOptions and override fields;
// a zero duration or count means what each field says, not "use the default".
type Options struct {
	// Addr is the listen address (host:port). The Proxy itself never binds
	// it: Serve takes a listener, so the owner (the Node) binds Addr and may
	// wrap the listener. Kept here so the config has one home.
	Addr string

	// ReadTimeout bounds reading a client request's head, then each read of
	// its streamed body (a progress timeout, so a large upload that keeps
	// moving is not cut). Zero: unlimited (slow clients can hold
	// connections forever).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a buffered response to the client; for a
	// streamed response it bounds each write, so a long-lived stream (SSE)
	// survives while a client that stops reading is cut. Zero: unlimited.
	WriteTimeout time.Duration
	// IdleTimeout is how long a client keep-alive connection may wait for its
	// next request. Zero: ReadTimeout is used (fasthttp's rule).
	IdleTimeout time.Duration
	// MaxRequestBody is the largest request body in bytes: a larger
	// Content-Length gets 413 before any body byte is read (before 100
	// Continue too); a chunked body that grows past it is cut mid-stream
	// (upstream connection closed, client 413 and a closed connection).
	// Bodies stream (upload.go), so memory does not grow with it. Zero: no
	// limit.
	MaxRequestBody int
	// ReadBufferSize is the per-connection read buffer, which also bounds the
	// request line plus headers fasthttp will parse (431 above). It must be
	// at least the front door's MaxRequestLine+MaxHeaderBytes so the front
	// door, not fasthttp, answers oversized heads. A connection keeps its
	// buffer between requests (the server frees it only when it buffers
	// request bodies, and bodies stream here), so it is most of what an idle
	// keep-alive connection costs (TestIdleKeepAliveMemory). Zero:
	// fasthttp's default (4 KiB).
	ReadBufferSize int
	// MaxConns caps concurrent client connections; beyond it a connection
	// gets 503 too-many-connections. New lowers it to what the descriptor
	// limit has room for (FDBudget). Zero: only that limit.
	MaxConns int
	// MaxConnsDefault says MaxConns is the configuration's default, which
	// nobody chose: lowering it to the descriptor limit is then the
	// expected fit, logged at info; lowering a cap that was asked for is a
	// warning.
	MaxConnsDefault bool
	// DrainTimeout is how long Shutdown lets in-flight requests finish
	// before closing their connections; WebSocket tunnels run until it
	// passes, then get a close frame 1001. Zero: wait only as long as the
	// context given to Shutdown.
	DrainTimeout time.Duration
	// TunnelIdleTimeout closes a WebSocket tunnel (close frame 1001) when
	// no byte has passed either way for this long
	// (listen.tunnel_idle_timeout). Zero: tunnels never idle out.
	TunnelIdleTimeout time.Duration
	// TunnelDrain is how long a cell's WebSocket tunnels stay open after
	// the cell's weight went to 0 (a revert, an abort, a blue/green
	// switch, an operator's 0) before each gets a close frame 1012 and its
	// client reconnects to the cell that now serves it
	// (routing.tunnel_drain). Zero: at once.
	TunnelDrain time.Duration

	// H2C accepts HTTP/2 with prior knowledge (RFC 9113 §3.3) on a plain
	// listener: a connection whose first bytes are the HTTP/2 preface is
	// served as HTTP/2, any other as HTTP/1.1 (listen.h2c). TLS listeners
	// choose by ALPN whatever this says. False: a plain listener speaks
	// HTTP/1.1 only and the preface is refused as a malformed request.
	H2C bool
	// Core is the HTTP/1.1 server core (listen.core): CoreGoroutine ("" too)
	// or CoreLoop (loopcore.go). Restart-only: the core owns the listener
	// and its connections from Serve on.
	Core string
	// loops is the loop core's loop count for tests that need one loop
	// (0: GOMAXPROCS).
	loops int
	// GRPCErrorCodes are the grpc-status codes that count a gRPC call as
	// failed for its cell's SLIs (slo.grpc_error_codes); a call without
	// grpc-status, or reset, always counts as failed. Nil:
	// DefaultGRPCErrorCodes; empty: only those always-failures.
	GRPCErrorCodes []int

	// ConnectTimeout bounds dialing an upstream endpoint. A dial that fails
	// or times out sent no byte, so an idempotent request may be retried on
	// another endpoint. Zero: the operating system's limit (minutes).
	ConnectTimeout time.Duration
	// UpstreamReadTimeout bounds waiting for the upstream's response headers
	// (and a small buffered body); for a streamed body it bounds each read,
	// so an SSE stream with regular events lives on. A timeout gives 504.
	// Zero: unlimited.
	UpstreamReadTimeout time.Duration
	// UpstreamWriteTimeout bounds writing the request to the upstream.
	// Zero: unlimited.
	UpstreamWriteTimeout time.Duration
	// MaxConnsPerEndpoint caps connections to one upstream endpoint; a
	// request that finds every connection busy gets 503 upstream-busy.
	// Zero: fasthttp's default (512).
	MaxConnsPerEndpoint int
	// MaxIdleConnDuration closes upstream keep-alive connections idle this
	// long. Keep it below the upstream server's own idle timeout, or the
	// upstream may close a connection just as a request is written on it.
	// Zero: fasthttp's default (10 s).
	MaxIdleConnDuration time.Duration

	// ResponseHeaders adds X-Cellgate-Cell and X-Cellgate-Version to every
	// proxied response (routing.response_headers).
	ResponseHeaders bool
	// StickyKey lists where the sticky key is read from, first present wins
	// (routing.sticky_key). Empty: every request is a random pick.
	StickyKey []balancer.Source
	// SetCookie makes a request without any sticky key get a generated key,
	// returned as cookie CookieName so the client stays on its cell
	// (routing.set_cookie). The cookie is consulted after StickyKey.
	SetCookie bool
	// CookieName is the cookie SetCookie sets. Empty with SetCookie: an error.
	CookieName string
	// OFREPPrefix serves OpenFeature Remote Evaluation on the client
	// listener under it (flags.ofrep_prefix: "/_cellgate" →
	// "/_cellgate/ofrep/v1/evaluate/flags"), answered by Hooks.OFREP.
	// Empty: not served; such paths are proxied like any other.
	OFREPPrefix string
	// TrustedProxies are the peers whose X-Forwarded-For is believed for the
	// "ip" sticky source; from any other peer the peer address is the key.
	// Empty: X-Forwarded-For is never believed.
	TrustedProxies []netip.Prefix

	// EjectAfter is the number of consecutive connect failures or 5xx
	// responses after which an endpoint is taken out of rotation.
	// Zero: never eject.
	EjectAfter int
	// EjectBackoff is how long the first ejection lasts; each further
	// ejection without a success in between doubles it, up to
	// EjectBackoffMax. Zero with EjectAfter > 0: an error.
	EjectBackoff time.Duration
	// EjectBackoffMax caps the doubled backoff. Zero: 32 × EjectBackoff.
	EjectBackoffMax time.Duration
	// MaxEjectionPercent caps the share of a cell's endpoints that 5xx
	// responses may eject (upstream.max_ejection_percent), in percent; at
	// least one endpoint may always go, as in Envoy. Connection failures
	// and active checks are not capped: an endpoint that cannot be reached
	// is out. Zero: 5xx eject at most one endpoint per cell.
	MaxEjectionPercent int
	// FailoverPanic is the share of the total weight, in percent, that may
	// be down while keys of down cells still fail over
	// (routing.failover_panic). Above it every key stays on its own cell,
	// as Envoy's panic threshold does, rather than crush the survivors.
	// Zero: never fail over; 100: always.
	FailoverPanic float64

	// PinMemory bounds the session pin table in bytes (routing.pin_memory):
	// a quarter for the recent-session slots, the rest for pins (~290 B
	// each). While a promotion moves keys, sessions active on their old
	// cell stay there. Zero: pins off. Otherwise at least
	// balancer.MinPinMemory (1 MiB).
	PinMemory int64
	// PinIdle is how long a session may be silent and keep its pin
	// (routing.pin_idle). Must be > 0 when PinMemory is set.
	PinIdle time.Duration
	// PinSecret keys the HMAC-SHA256 of pin cookies (the contents of
	// routing.pin_secret_file); every node of a fleet needs the same one.
	// With SetCookie and pins on, pins travel in cookie PinCookieName so
	// any node honours them. Empty: pins stay on the node that made them.
	PinSecret []byte
	// PinCookieName is the pin cookie's name. Empty with a PinSecret and
	// SetCookie: an error.
	PinCookieName string

	// Tracing is what the proxy does with trace context ([tracing]). The
	// zero value changes nothing in a request.
	Tracing Tracing
}

// DefaultOptions returns the options cellgate runs with unless the config
// says otherwise, with the reason beside each value.
func DefaultOptions() Options {
	return Options{
		Addr:                 ":8080",          // conventional unprivileged HTTP port
		ReadTimeout:          30 * time.Second, // generous for uploads, still cuts slowloris clients
		WriteTimeout:         30 * time.Second, // per write when streaming, so SSE is not cut
		IdleTimeout:          60 * time.Second, // above typical LB/client idle (Go 90 s, browsers ~60 s)
		MaxRequestBody:       1 << 30,          // 1 GiB: uploads stream, memory does not grow with it
		MaxConns:             0,                // fasthttp's 256k; the OS fd limit binds first
		DrainTimeout:         30 * time.Second, // matches Kubernetes' default grace period
		TunnelIdleTimeout:    10 * time.Minute, // far above common WebSocket ping intervals (20–60 s); reaps dead peers
		TunnelDrain:          5 * time.Second,  // replies in flight arrive; a reverted version should not keep users long
		ConnectTimeout:       2 * time.Second,  // loopback/LAN dials take µs; a long dial is a dead host
		UpstreamReadTimeout:  60 * time.Second, // slow endpoints exist; SSE reads reset it per event
		UpstreamWriteTimeout: 30 * time.Second, // same bound as the client side
		MaxConnsPerEndpoint:  1024,             // above fasthttp's 512: one proxy serves many clients
		MaxIdleConnDuration:  4 * time.Second,  // below Go net/http's and most servers' 5 s+ idle timeouts
		ResponseHeaders:      true,             // contract: on by default
		StickyKey:            []balancer.Source{{Kind: balancer.SourceIP}},
		CookieName:           "cellgate",
		EjectAfter:           5,                   // Envoy's consecutive_5xx default
		EjectBackoff:         time.Second,         // short: a restarted pod is back in seconds
		EjectBackoffMax:      30 * time.Second,    // Envoy's max_ejection_time is 300 s; we stay shorter
		TrustedProxies:       []netip.Prefix(nil), // trust nobody unless configured
		PinIdle:              5 * time.Minute,     // a conversation's pause, not a day
		PinCookieName:        "cellgate_pin",
		MaxEjectionPercent:   50, // 5xx alone never empties more than half a cell
		FailoverPanic:        50, // Envoy's panic threshold: beyond half down, spread over all
	}
}

// CellSpec is one cell as configured: its name, the version it runs, its
// endpoints (host:port; discovery resolves names before they get here),
// its routing weight and its active health check.
type CellSpec struct {
	Name      string
	Version   string
	Endpoints []string
	Weight    float64
	// Health is the cell's active check. Nil: passive health only.
	Health *HealthCheck
	// Discovered says the endpoints come from discovery, so the list may
	// be empty (the cell is then down and its users fail over).
	Discovered bool
	// Protocol is what the cell's endpoints speak: ProtoHTTP1 (or empty),
	// ProtoH2C or ProtoH2 (h2upstream.go). gRPC calls need an HTTP/2 cell.
	Protocol string
	// TLS reaches the endpoints over TLS (HTTP/1.1 or h2). Nil: plain TCP.
	TLS *UpstreamTLS
	// Weights gives endpoints a priority and weight (from SRV records,
	// tiers.go), by address. Nil: all equal. An endpoint it does not name
	// has priority 0 and weight 1.
	Weights map[string]EndpointWeight
}

// CellRecorder receives the outcome of every finished request of one cell.
// Implementations must be safe for concurrent use, must not block and must
// not allocate if the hot path is to stay allocation-free: Record runs on the
// request path.
type CellRecorder interface {
	// Record reports one finished request: status is what the client got
	// (502/503/504 generated by the proxy carry proxyErr = true), total is
	// the time from request start to the last response byte handed to the
	// client connection, ttfb the time until the upstream's response headers
	// arrived (zero when none did).
	Record(status int, proxyErr bool, total, ttfb time.Duration)
}

// Hooks are optional collaborators. Each nil field has a working default.
type Hooks struct {
	// Recorder returns the recorder for a cell; it is called when a cell
	// first appears (New, SetCells) and the result is kept across reloads.
	// Nil, or a nil result: the cell's requests are not recorded.
	Recorder func(cell string) CellRecorder
	// Logger receives operational events (ejections, drain). Nil: discarded.
	Logger *slog.Logger
	// Rand returns uniform random 64-bit values for keyless picks, endpoint
	// choice and generated cookies. It must be safe for concurrent use.
	// Nil: math/rand/v2's per-thread generator (lock-free).
	Rand func() uint64
	// Now is the clock for passive-health ejection. Nil: time.Now. Request
	// latencies always use the real monotonic clock.
	Now func() time.Time
	// AccessLog receives a record of every finished request it asks for
	// (accesslog.Log.Begin: on, sampled or an error, buffer not full); it
	// may be reconfigured, turned off and on, while the proxy serves. Nil:
	// no access log, and the request path skips it with one nil check.
	AccessLog *accesslog.Log
	// Spans exports a span per sampled request of a trace the proxy took
	// part in ([tracing] generate with otlp_endpoint): the proxy's span id
	// goes upstream in traceparent. Nil: no spans; traceparent is kept or
	// started as Options.Tracing says.
	Spans *spans.Exporter
	// NoFileLimit returns the process's descriptor limit, which caps
	// Options.MaxConns (see FDBudget); 0 means unknown, no clamp. Nil:
	// RLIMIT_NOFILE.
	NoFileLimit func() uint64
	// Flags assigns feature-flag variants (proxy/flags.go). Nil: no flags;
	// requests carry no X-Cellgate-Flags (a client's copy is still removed).
	Flags *flags.Engine
	// OFREP answers evaluations under Options.OFREPPrefix. Nil: not served.
	OFREP *flags.OFREP
}

// validate reports every problem in o at once.
func (o *Options) validate() error {
	var errs []error
	if o.MaxRequestBody < 0 {
		errs = append(errs, fmt.Errorf("max request body %d: must be ≥ 0", o.MaxRequestBody))
	}
	if err := checkCore(o.Core); err != nil {
		errs = append(errs, err)
	}
	if o.TunnelIdleTimeout < 0 || o.TunnelDrain < 0 {
		errs = append(errs, errors.New("tunnel idle timeout and tunnel drain must be ≥ 0"))
	}
	if o.MaxConns < 0 || o.MaxConnsPerEndpoint < 0 {
		errs = append(errs, errors.New("connection limits must be ≥ 0"))
	}
	if o.SetCookie && o.CookieName == "" {
		errs = append(errs, errors.New("set_cookie needs a cookie name"))
	}
	if o.EjectAfter < 0 {
		errs = append(errs, fmt.Errorf("eject after %d: must be ≥ 0", o.EjectAfter))
	}
	if o.EjectAfter > 0 && o.EjectBackoff <= 0 {
		errs = append(errs, errors.New("eject backoff must be > 0 when ejection is on"))
	}
	if !(o.Tracing.Sample >= 0 && o.Tracing.Sample <= 1) {
		errs = append(errs, fmt.Errorf("tracing sample %v: want 0 to 1", o.Tracing.Sample))
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		errs = append(errs, fmt.Errorf("max ejection percent %d: want 0-100", o.MaxEjectionPercent))
	}
	if !(o.FailoverPanic >= 0 && o.FailoverPanic <= 100) {
		errs = append(errs, fmt.Errorf("failover panic %v: want 0-100 (percent)", o.FailoverPanic))
	}
	if o.PinMemory < 0 || (o.PinMemory > 0 && o.PinMemory < balancer.MinPinMemory) {
		errs = append(errs, fmt.Errorf("pin memory %d: want 0 (off) or at least %d bytes", o.PinMemory, balancer.MinPinMemory))
	}
	if o.PinMemory > 0 && o.PinIdle <= 0 {
		errs = append(errs, errors.New("pin idle must be > 0 when pins are on"))
	}
	if o.PinMemory > 0 && o.SetCookie && len(o.PinSecret) > 0 && o.PinCookieName == "" {
		errs = append(errs, errors.New("pin cookies need a cookie name"))
	}
	for _, s := range o.StickyKey {
		if s.Kind < balancer.SourceHeader || s.Kind > balancer.SourceIP {
			errs = append(errs, fmt.Errorf("sticky key source %v: unknown kind", s))
		}
		if s.Kind != balancer.SourceIP && s.Name == "" {
			errs = append(errs, fmt.Errorf("sticky key source %v: empty name", s))
		}
	}
	return errors.Join(errs...)
}

// CheckCells reports whether SetCells(cells) would succeed, changing nothing.
func CheckCells(cells []CellSpec) error {
	if err := validateCells(cells); err != nil {
		return fmt.Errorf("cells: %w", err)
	}
	return nil
}

// validateCells reports every problem in a cell list at once.
func validateCells(cells []CellSpec) error {
	var errs []error
	seen := make(map[string]bool, len(cells))
	for _, c := range cells {
		if c.Name == "" {
			errs = append(errs, errors.New("cell with empty name"))
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("cell %q: duplicate name", c.Name))
		}
		seen[c.Name] = true
		if len(c.Endpoints) == 0 && !c.Discovered {
			errs = append(errs, fmt.Errorf("cell %q: no endpoints", c.Name))
		}
		if c.Weight < 0 {
			errs = append(errs, fmt.Errorf("cell %q: negative weight %v", c.Name, c.Weight))
		}
		for _, ep := range c.Endpoints {
			if _, err := netip.ParseAddrPort(ep); err != nil && !validHostPort(ep) {
				errs = append(errs, fmt.Errorf("cell %q: endpoint %q: want host:port", c.Name, ep))
			}
		}
		if err := validateProtocol(&c); err != nil {
			errs = append(errs, fmt.Errorf("cell %q: %w", c.Name, err))
		}
		if c.Health != nil {
			if err := c.Health.validate(); err != nil {
				errs = append(errs, fmt.Errorf("cell %q: health: %w", c.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
