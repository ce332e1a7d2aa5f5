package proxy

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// A fasthttp Server reads its fields (timeouts, body limit) without
// synchronisation while it serves, so a reload cannot change them in place.
// Instead the proxy's accept loop hands connections to whichever server is
// current: a reload that changes the client-side timeouts or the body limit
// builds a new server beside the old one and retires the old one, which
// keeps serving the connections it already has, with the settings they
// started with, until they close (Caddy's reload: build beside, swap, let
// the old drain). Retired servers with no connection left are dropped at
// the next swap; Shutdown drains every server.

// accepted is one result of the shared accept loop.
type accepted struct {
	c   net.Conn
	err error
}

// gate is the listener one server serves on: it hands out what the shared
// accept loop accepted until the server is retired (Close).
type gate struct {
	in   <-chan accepted
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newGate(in <-chan accepted, addr net.Addr) *gate {
	return &gate{in: in, done: make(chan struct{}), addr: addr}
}

// Accept returns the next accepted connection, or net.ErrClosed once the
// gate is closed (fasthttp's Serve then returns nil). A connection that
// arrives just as the gate closes may still go to this gate's server,
// which serves it: none is dropped.
func (g *gate) Accept() (net.Conn, error) {
	select {
	case <-g.done:
		return nil, net.ErrClosed
	case a := <-g.in:
		return a.c, a.err
	}
}

// Close retires the gate; the shared listener stays open.
func (g *gate) Close() error {
	g.once.Do(func() { close(g.done) })
	return nil
}

func (g *gate) Addr() net.Addr { return g.addr }

func (g *gate) closed() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// pump accepts on ln and hands each result to the current gate until an
// accept error (the listener closed or failed: the error is handed on too)
// or stop closes. A connection nobody takes any more is closed. A
// connection that may speak HTTP/2 is sorted first (h2front.go).
func (p *Proxy) pump(ln net.Listener, out chan<- accepted, stop <-chan struct{}) {
	for {
		c, err := ln.Accept()
		if err == nil && p.sortConn(c, out, stop) {
			continue
		}
		select {
		case out <- accepted{c, err}:
		case <-stop:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// serveSwapping serves ln with the current server, moving to a new one
// whenever swapServerLocked retires the one serving. It returns what the
// last server's Serve returned.
func (p *Proxy) serveSwapping(ln net.Listener) error {
	in := make(chan accepted)
	stop := make(chan struct{})
	defer close(stop)
	go p.pump(ln, in, stop)
	for {
		p.mu.Lock()
		srv, g := p.server, newGate(in, ln.Addr())
		p.gate = g
		p.mu.Unlock()
		err := srv.Serve(g)
		if err == nil && g.closed() && !p.draining.Load() {
			continue // retired by a reload: serve on with the new server
		}
		return err
	}
}

// serverChanged reports whether o needs a new fasthttp Server.
func serverChanged(a, b *Options) bool {
	return a.ReadTimeout != b.ReadTimeout || a.WriteTimeout != b.WriteTimeout ||
		a.IdleTimeout != b.IdleTimeout || a.MaxRequestBody != b.MaxRequestBody
}

// swapServerLocked makes a server with o's settings current and retires the
// serving one. p.mu must be held.
func (p *Proxy) swapServerLocked(o *Options) {
	live := p.retired[:0]
	for _, s := range p.retired {
		if s.GetOpenConnectionsCount() > 0 {
			live = append(live, s)
		}
	}
	p.retired = append(live, p.server)
	p.server = p.newServer(o)
	if p.gate != nil {
		p.gate.Close()
	}
}

// shutdownServers drains every server, the current and the retired ones.
func (p *Proxy) shutdownServers(ctx context.Context) error {
	p.mu.Lock()
	servers := append([]*fasthttp.Server{p.server}, p.retired...)
	p.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.ShutdownWithContext(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
