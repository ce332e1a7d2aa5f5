package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/flags"
)

// Proxy is one cellgate data plane: a fasthttp server and the cells it
// routes to. Build it with New, run it with Serve, stop it with Shutdown.
type Proxy struct {
	// opts are the options the proxy was built with. Only what cannot
	// change while it serves (restartOptions: the fasthttp Server's
	// fields the proxy sizes once, the pin table's) is read from here;
	// everything SetOptions may change is read from set.
	opts   Options
	set    atomic.Pointer[settings] // current per-request settings; replaced whole by SetOptions
	seed   uint64
	hooks  Hooks
	log    *slog.Logger
	health health
	rand   func() uint64
	conns  connTracker
	// overrides counts requests steered by a trusted X-Cellgate-Override
	// (proxy/flags.go), which no recorder sees.
	overrides atomic.Uint64
	// overrideCookie verifies cellgate_override cookies; nil without a
	// pin secret. The secret cannot change without a restart (reload.go).
	overrideCookie *flags.OverrideCookie
	accept         acceptState
	budget         FDBudget

	// tunnels owns the open WebSocket tunnels (tunnelset.go).
	tunnels *tunnelSet

	// snap is the routing snapshot the request path reads with one load.
	snap atomic.Pointer[snapshot]

	// mu serialises snapshot writers (SetWeights, SetCells) and guards the
	// registries below, which let reloads reuse endpoints and recorders.
	mu        sync.Mutex
	endpoints map[string]*endpoint    // "cell\x00addr" → endpoint of the current snapshot
	recorders map[string]CellRecorder // cell name → recorder (nil: none)
	stats     map[string]*cellStats   // cell name → failover counters
	checkWG   sync.WaitGroup          // running active health checks and readmission probes
	// stopProbes ends readmission probes (readmit.go) at Shutdown.
	stopProbes context.Context
	endProbes  context.CancelFunc

	// noFailover names the cells that receive no failover traffic (the
	// targets of running rollouts); nil: none.
	noFailover atomic.Pointer[[]string]

	states sync.Pool // *reqState

	draining atomic.Bool  // Shutdown began: every response closes its connection
	ln       net.Listener // the listener Serve accepts on; guarded by mu

	// server serves new connections and retired the servers a reload
	// replaced, still serving the connections they had (servers.go); gate
	// is the current server's listener. All guarded by mu.
	server  *fasthttp.Server
	retired []*fasthttp.Server
	gate    *gate

	// h2 serves the HTTP/2 connections (h2front.go).
	h2 h2Front

	// loops is the loop core when it serves (loopcore.go); nil otherwise.
	// Guarded by mu.
	loops *loopCore
	// lookupIP resolves an endpoint's host name for the loop core, off
	// its loops (loopresolve.go): the default resolver's; tests hold it.
	lookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// resolveClock, when set (tests), is the clock (UnixNano) the loop
	// core ages the addresses it looked up by, in place of its batch
	// clock, so a test can let resolveFor pass without waiting for it.
	resolveClock func() int64
	// loopDeclined is set when Options.Core is CoreLoop but Serve got a
	// listener the loop core cannot serve (not TCP), so Core reports the
	// goroutine core that serves it.
	loopDeclined atomic.Bool
}

// lookupIP is the default resolver's LookupNetIP for any address family.
func lookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// New validates opts and cells and builds a proxy. seed keys the sticky
// hash; it must come from the config so keys keep their cells across
// restarts and across the nodes of a fleet.
func New(opts Options, seed uint64, cells []CellSpec, hooks Hooks) (*Proxy, error) {
	if err := errors.Join(opts.validate(), validateCells(cells)); err != nil {
		return nil, fmt.Errorf("new proxy: %w", err)
	}
	if opts.EjectBackoffMax <= 0 {
		opts.EjectBackoffMax = 32 * opts.EjectBackoff
	}
	p := &Proxy{
		opts:      opts,
		seed:      seed,
		hooks:     hooks,
		log:       hooks.Logger,
		rand:      hooks.Rand,
		endpoints: map[string]*endpoint{},
		recorders: map[string]CellRecorder{},
		stats:     map[string]*cellStats{},
		lookupIP:  lookupIP,
	}
	p.overrideCookie = flags.NewOverrideCookie(opts.PinSecret)
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.rand == nil {
		p.rand = rand.Uint64
	}
	now := hooks.Now
	if now == nil {
		now = time.Now
	}
	p.health.now = now
	p.health.set(&opts)
	p.set.Store(newSettings(opts))
	p.states.New = func() any { return &reqState{p: p} }
	p.stopProbes, p.endProbes = context.WithCancel(context.Background())
	p.tunnels = newTunnelSet(p.log, opts.TunnelIdleTimeout, opts.TunnelDrain)
	p.tunnels.start()
	p.mu.Lock()
	p.snap.Store(p.buildSnapshotLocked(cells))
	p.mu.Unlock()
	if err := p.fitDescriptors(cells); err != nil {
		return nil, fmt.Errorf("new proxy: %w", err)
	}
	p.server = p.newServer(&opts)
	if err := p.initH2(&opts); err != nil {
		return nil, fmt.Errorf("new proxy: http/2: %w", err)
	}
	return p, nil
}

// fitDescriptors sizes the connection cap and the refusal slots to the
// descriptor limit, and logs the choice.
func (p *Proxy) fitDescriptors(cells []CellSpec) error {
	limit := noFileLimit
	if p.hooks.NoFileLimit != nil {
		limit = p.hooks.NoFileLimit
	}
	endpoints := 0
	for _, c := range cells {
		endpoints += len(c.Endpoints)
	}
	b, err := fitConns(limit(), p.opts.MaxConns, endpoints)
	if err != nil {
		return err
	}
	p.budget = b
	p.opts.MaxConns = b.MaxConns
	p.conns.max, p.conns.maxLingering = b.MaxConns, int32(b.Refusals)
	args := []any{"max_conns", b.MaxConns, "nofile", b.Limit, "reserve", b.Reserve, "refusal_slots", b.Refusals}
	switch {
	case b.Clamped() && p.opts.MaxConnsDefault:
		p.log.Info("max_conns (default) fitted to the descriptor limit (2 per connection)", append(args, "configured", b.Configured)...)
	case b.Clamped():
		p.log.Warn("max_conns lowered to what the descriptor limit allows (2 per connection); raise ulimit -n for more", append(args, "configured", b.Configured)...)
	default:
		p.log.Info("descriptor budget", args...)
	}
	return nil
}

// newServer configures a fasthttp server with o's timeouts and body limit
// (servers.go swaps servers when a reload changes them); the rest comes
// from the options the proxy was built with. Header-name normalisation is
// off so names pass through as the client spelled them; the proxy writes
// no Server, Date or Content-Type of its own onto upstream responses (no
// Name either: fasthttp adds "Server: <Name>" to any response without one).
func (p *Proxy) newServer(o *Options) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       p.handle,
		ErrorHandler:                  p.handleBadRequest,
		ExpectHandler:                 p.expect,
		StreamRequestBody:             true, // upload.go: bodies stream, memory per upload is constant
		ReadTimeout:                   o.ReadTimeout,
		WriteTimeout:                  o.WriteTimeout,
		IdleTimeout:                   o.IdleTimeout,
		MaxRequestBodySize:            o.MaxRequestBody,
		ReadBufferSize:                p.opts.ReadBufferSize,
		ReduceMemoryUsage:             true, // also: one flush per response, which headswap.go needs
		Concurrency:                   serverConcurrency(p.opts.MaxConns),
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{p.log},
	}
}

// Serve accepts connections on ln until Shutdown. Any listener works (the
// front-door validator wraps the TCP listener). Temporary accept errors
// (EMFILE and the like) are retried with backoff, not returned. It returns
// nil after a Shutdown and a permanent accept error otherwise; Serving is
// false from then on.
func (p *Proxy) Serve(ln net.Listener) error {
	if p.opts.Core == CoreLoop && !p.draining.Load() {
		lln, ok, err := p.startLoops(ln)
		if err != nil {
			ln.Close()
			p.accept.ended.Store(true)
			return fmt.Errorf("serve: %w", err)
		}
		if ok {
			ln = lln // the goroutine core serves what the loops hand over
		}
	}
	wl := p.conns.wrap(newBackoffListener(ln, &p.accept, p.log))
	p.mu.Lock()
	if p.draining.Load() { // Shutdown came first: never start serving
		p.mu.Unlock()
		ln.Close()
		return nil
	}
	p.ln = wl
	p.mu.Unlock()
	err := p.serveSwapping(wl)
	p.accept.ended.Store(true)
	if p.draining.Load() && errors.Is(err, net.ErrClosed) {
		return nil // Shutdown closed the listener
	}
	return err
}

// drainIdleGrace is how long a drain keeps idle keep-alive connections open
// before closing them, at most half the drain timeout. Closing an idle
// connection races with a client that is just sending on it (RFC 9112
// §9.3.1 leaves such clients to retry); a client that sends within the
// grace instead gets its answer with "Connection: close" and reconnects
// cleanly — to the successor, during a handover.
const drainIdleGrace = 5 * time.Second

// Shutdown stops accepting, lets in-flight requests finish until ctx ends
// or DrainTimeout passes, then closes every remaining client connection
// and every idle upstream connection. It returns the context's error when
// the drain was cut short.
func (p *Proxy) Shutdown(ctx context.Context) error {
	drain := p.drainTimeout()
	if drain > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, drain)
		defer cancel()
	}
	// Stop accepting, and answer every further request with
	// "Connection: close", so busy keep-alive connections end after their
	// next response instead of being closed under a client mid-send.
	p.mu.Lock()
	p.draining.Store(true) // under mu, so a Serve that has not begun sees it
	ln := p.ln
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.shutdownH2()
	g := drainIdleGrace
	if drain > 0 {
		g = min(g, drain/2)
	}
	grace := time.NewTimer(g)
	tick := time.NewTicker(10 * time.Millisecond)
wait:
	for p.conns.open() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-grace.C:
			break wait
		case <-tick.C:
		}
	}
	grace.Stop()
	tick.Stop()
	// Then close what is idle and wait for requests still in flight.
	p.mu.Lock()
	loops := p.loops
	p.mu.Unlock()
	if loops != nil {
		loops.shutdown(ctx)
	}
	err := p.shutdownServers(ctx)
	p.waitH2(ctx)
	if err != nil {
		p.log.Warn("drain cut short; closing remaining connections", "err", err)
	}
	// WebSocket tunnels run on until the drain ends, then get a close
	// frame (1001) before their connections are closed.
	p.tunnels.stop(ctx)
	if loops != nil {
		loops.closeAll()
	}
	p.conns.closeAll()
	p.mu.Lock()
	for _, e := range p.endpoints {
		p.setCheckLocked(e, nil)
		e.closeIdle()
	}
	if s := p.snap.Load().sessions; s != nil && s.pins != nil {
		s.pins.Close() // stops the pin cache's goroutines
	}
	p.mu.Unlock()
	p.endProbes()
	p.checkWG.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// expect decides an "Expect: 100-continue" before any body byte is read:
// a Content-Length above MaxRequestBody gets 413 at once (the server then
// closes the connection); otherwise the server sends 100 Continue itself
// and the handler forwards the request without Expect (reqhead.go).
func (p *Proxy) expect(ctx *fasthttp.RequestCtx) int {
	if max := p.options().MaxRequestBody; max > 0 && ctx.Request.Header.ContentLength() > max {
		writeError(ctx, causeTooLarge)
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

// handleBadRequest answers requests the server could not read: 413 above
// MaxRequestBody, 431 for oversized headers, 408 on read timeout, 400 for
// anything malformed. The server closes that connection; others continue.
func (p *Proxy) handleBadRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("413 request body too large\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("431 request header too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		ctx.Error("408 request timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("400 bad request\n", fasthttp.StatusBadRequest)
	}
}

// fasthttpLogger adapts slog to fasthttp's Printf logger.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// connTracker remembers accepted client connections so Shutdown can close
// the ones a drain timeout left open (fasthttp leaves them running), and
// caps how many are open at once (Options.MaxConns).
type connTracker struct {
	// max is the cap on tracked connections; zero means none. Set before
	// Serve.
	max int
	// maxLingering bounds the refusals answered at once (see refuse).
	// Set before Serve.
	maxLingering int32

	mu    sync.Mutex
	conns map[*trackedConn]struct{} // guarded by mu
	// Under the loop core (looped) the loops own most connections: they
	// count them in loopOpen and apply the cap when they accept; handing
	// counts those handed to the goroutine core and not yet tracked, which
	// admit then takes without the cap. All guarded by mu.
	looped   bool
	loopOpen int
	handing  int

	refused   atomic.Uint64 // connections answered 503 too-many-connections
	lingering atomic.Int32  // refusals still being answered (see refuse)

	swaps swapPool // response heads written from the upstream's bytes (headswap.go)
}

func (t *connTracker) wrap(ln net.Listener) net.Listener { return &trackingListener{ln, t} }

// admit tracks c unless the cap is reached. Under the loop core every
// connection it sees was accepted, and capped, by a loop (admitLoop).
func (t *connTracker) admit(c *trackedConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.looped {
		t.handing = max(t.handing-1, 0)
	} else if t.max > 0 && len(t.conns) >= t.max {
		return false
	}
	if t.conns == nil {
		t.conns = map[*trackedConn]struct{}{}
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *connTracker) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns) + t.loopOpen + t.handing
}

// setLooped switches the tracker to the loop core's accounting (admit).
func (t *connTracker) setLooped() {
	t.mu.Lock()
	t.looped = true
	t.mu.Unlock()
}

// admitLoop counts a connection a loop accepted, unless the cap is
// reached: the cap covers the loops' connections and the goroutine
// core's together.
func (t *connTracker) admitLoop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.max > 0 && len(t.conns)+t.loopOpen+t.handing >= t.max {
		return false
	}
	t.loopOpen++
	return true
}

// releaseLoop forgets a loop's connection: closed, or handed to the
// goroutine core (handed), which admits it without the cap.
func (t *connTracker) releaseLoop(handed bool) {
	t.mu.Lock()
	t.loopOpen--
	if handed {
		t.handing++
	}
	t.mu.Unlock()
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackingListener struct {
	net.Listener
	t *connTracker
}

// Accept returns the next connection under the cap; connections over it
// are answered 503 here and never reach the server.
func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: l.t}
		if l.t.admit(tc) {
			if t, ok := c.(tlsConner); ok {
				// fasthttp learns that a connection is TLS (IsTLS, hence
				// X-Forwarded-Proto: https) from these methods; keep them
				// visible through the tracker.
				return &trackedTLSConn{tc, t}, nil
			}
			return tc, nil
		}
		l.t.refuse(c)
	}
}

// trackedConn removes itself from the tracker when closed.
type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
	// swap is the response head the next Write carries (headswap.go);
	// only the connection's serving goroutine touches it.
	swap   *headSwap
	noSwap bool // the server batched responses: no more swaps (armHeadSwap)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.t.remove(c) })
	return c.Conn.Close()
}

// NetConn returns the connection beneath, as tls.Conn.NetConn does.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

// ReadFrom passes a body copy down to the connection beneath when it can
// take one itself (the front door, then a TCP socket that splices: see
// splice.go); embedding net.Conn alone would hide it.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(onlyWriter{c.Conn}, r)
}

// trackedTLSConn is a trackedConn over a TLS connection.
type trackedTLSConn struct {
	*trackedConn
	tls tlsConner
}

func (c *trackedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *trackedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// abortConn makes the next Close of c a TCP reset (SO_LINGER 0) instead of
// an orderly end, so a client reading a close-delimited body cannot take a
// cut one for a whole one.
func abortConn(c net.Conn) {
	if tc, ok := innermost(c).(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}
