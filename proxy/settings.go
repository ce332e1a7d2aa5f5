package proxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// settings is the part of Options a running proxy can change (SetOptions):
// everything read per request, per new upstream connection or per drain.
// It is immutable and replaced whole behind Proxy.set, so the request path
// reads a consistent set with one atomic load and a reload never races it.
// What the fasthttp Server, the front door or the pin table were built
// with cannot change while they run (restartOptions).
type settings struct {
	opts Options    // a private copy; its slices are never shared with a caller
	keys keySources // opts.StickyKey compiled, plus the generated cookie's source
	// grpcFail is opts.GRPCErrorCodes as a set (grpc.go).
	grpcFail grpcMask
}

// newSettings compiles o, which must be valid.
func newSettings(o Options) *settings {
	o.StickyKey = slices.Clone(o.StickyKey)
	o.TrustedProxies = slices.Clone(o.TrustedProxies)
	srcs := o.StickyKey
	if o.SetCookie && !hasCookieSource(srcs, o.CookieName) {
		srcs = append(srcs[:len(srcs):len(srcs)], cookieSource(o.CookieName))
	}
	codes := o.GRPCErrorCodes
	if codes == nil {
		codes = DefaultGRPCErrorCodes
	}
	o.GRPCErrorCodes = slices.Clone(o.GRPCErrorCodes)
	return &settings{opts: o, keys: newKeySources(srcs, o.TrustedProxies), grpcFail: newGRPCMask(codes)}
}

// settings returns the current settings (one atomic load).
func (p *Proxy) settings() *settings { return p.set.Load() }

// options returns the current options, for the request path.
func (p *Proxy) options() *Options { return &p.set.Load().opts }

// Options returns the options the proxy runs with now: those it was built
// with, as changed by SetOptions.
func (p *Proxy) Options() Options {
	o := p.set.Load().opts
	o.StickyKey = slices.Clone(o.StickyKey)
	o.TrustedProxies = slices.Clone(o.TrustedProxies)
	return o
}

// restartOptions names the fields a running proxy cannot change, with why:
// the listener is bound once, the front door and the read buffer are sized
// once per listener, the connection cap is fitted to the descriptor limit
// once, and the pin table is built once (rebuilding it would forget every
// pin). The fasthttp Server's timeouts and body limit are not here: a
// change builds a new server beside the old one (servers.go).
var restartOptions = []struct {
	name string
	same func(a, b *Options) bool
}{
	{"Addr", func(a, b *Options) bool { return a.Addr == b.Addr }},
	{"ReadBufferSize", func(a, b *Options) bool { return a.ReadBufferSize == b.ReadBufferSize }},
	{"MaxConns", func(a, b *Options) bool { return a.MaxConns == b.MaxConns }},
	{"Core", func(a, b *Options) bool { return a.Core == b.Core }},
	{"PinMemory", func(a, b *Options) bool { return a.PinMemory == b.PinMemory }},
	{"PinIdle", func(a, b *Options) bool { return a.PinIdle == b.PinIdle }},
	{"PinSecret", func(a, b *Options) bool { return string(a.PinSecret) == string(b.PinSecret) }},
	{"PinCookieName", func(a, b *Options) bool { return a.PinCookieName == b.PinCookieName }},
}

// CheckOptions reports whether SetOptions(o) would succeed: o is valid and
// changes no field that needs a new proxy (each such field is named). It
// changes nothing, so a reload can check every part before applying any.
func (p *Proxy) CheckOptions(o Options) error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("set options: %w", err)
	}
	cur := &p.set.Load().opts
	var errs []error
	for _, f := range restartOptions {
		if !f.same(cur, &o) {
			errs = append(errs, fmt.Errorf("%s cannot change while the proxy serves", f.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set options: %w", err)
	}
	return nil
}

// SetOptions changes the options of a running proxy (a config reload).
// Per-request settings — response headers, sticky key sources, the
// generated cookie, trusted proxies, upstream timeouts, ejection policy,
// drain timeout, body limit — apply from the next request; requests in
// flight finish with the settings they started with, except that a
// stream's next read uses the new upstream timeout. When the client-side
// timeouts or the body limit change, new connections are served by a new
// fasthttp Server; connections already open keep the old one's until they
// close (servers.go). When the upstream pool settings change
// (MaxConnsPerEndpoint, MaxIdleConnDuration), every endpoint gets a new
// pool beside the old, keeping its health; the old pools drain like
// removed endpoints. On error (see CheckOptions) nothing changes.
func (p *Proxy) SetOptions(o Options) error {
	if err := p.CheckOptions(o); err != nil {
		return err
	}
	if o.EjectBackoffMax <= 0 {
		o.EjectBackoffMax = 32 * o.EjectBackoff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set.Load()
	p.set.Store(newSettings(o))
	p.health.set(&o)
	p.tunnels.setTimeouts(o.TunnelIdleTimeout, o.TunnelDrain)
	if old.opts.MaxConnsPerEndpoint != o.MaxConnsPerEndpoint || old.opts.MaxIdleConnDuration != o.MaxIdleConnDuration {
		p.renewPoolsLocked()
	}
	if serverChanged(&old.opts, &o) {
		p.swapServerLocked(&o)
	}
	return nil
}

// renewPoolsLocked replaces every endpoint with one on a new pool built
// from the current settings, carrying over its passive-health state, and
// publishes a snapshot with the same cells and weights. p.mu must be held.
func (p *Proxy) renewPoolsLocked() {
	old := p.snap.Load()
	renewed := make(map[*endpoint]*endpoint, len(p.endpoints))
	for key, e := range p.endpoints {
		n := newEndpoint(e.addr, p.options(), p.dialPooled)
		p.keepProtocol(n, e)
		n.fails.Store(e.fails.Load())
		n.ejections.Store(e.ejections.Load())
		n.ejectedUntil.Store(e.ejectedUntil.Load())
		p.moveCheckLocked(e, n)
		renewed[e] = n
		p.endpoints[key] = n
		e.removed.Store(true)
		go p.drainEndpoint(e)
	}
	cells := make([]*cell, len(old.cells))
	for i, c := range old.cells {
		nc := *c
		nc.endpoints = make([]*endpoint, len(c.endpoints))
		for j, e := range c.endpoints {
			nc.endpoints[j] = renewed[e]
		}
		cells[i] = &nc
	}
	p.snap.Store(&snapshot{table: old.table, cells: cells, pins: old.pins, sessions: old.sessions, loopable: old.loopable})
}

// dial opens an upstream connection within the current connect timeout.
func (p *Proxy) dial(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: p.options().ConnectTimeout}
	return d.Dial("tcp", addr)
}

// dialPooled opens a keep-alive upstream connection for an endpoint's pool,
// wrapped for the write-and-wait round trip (upconn.go).
func (p *Proxy) dialPooled(addr string) (net.Conn, error) {
	c, err := p.dial(addr)
	if err != nil {
		return nil, err
	}
	return newUpConn(c), nil
}

// drainTimeout is the current DrainTimeout.
func (p *Proxy) drainTimeout() time.Duration { return p.options().DrainTimeout }
