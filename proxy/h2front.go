package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cellgate/cellgate/proxy/frontdoor"
	"golang.org/x/net/http2"
)

// HTTP/2 reaches the proxy two ways: over TLS when the client chose "h2" by
// ALPN, and on a plain listener with prior knowledge (RFC 9113 §3.3) when
// Options.H2C is on, recognised by the connection preface (§3.4). Such
// connections never reach the fasthttp server: sortConn takes them off the
// accept loop and an http2.Server (golang.org/x/net/http2) serves them,
// each stream through serveH2, which runs the same request path as HTTP/1.1
// (h2serve.go). HTTP/1.1 connections go on to fasthttp unchanged; on a plain
// listener without H2C they are not even looked at.

// h2Preface is the client connection preface of RFC 9113 §3.4.
var h2Preface = []byte(http2.ClientPreface)

// h2Front is the HTTP/2 server side of a proxy.
type h2Front struct {
	srv *http2.Server
	// base carries graceful shutdown to every HTTP/2 connection:
	// http2.ConfigureServer registers a GOAWAY for each one on its
	// Shutdown, and serves no listener of its own.
	base *http.Server
	// conns counts the HTTP/2 connections being served, so a drain can
	// wait for their open streams.
	conns sync.WaitGroup
}

// h2Defaults are the HTTP/2 server limits, with why.
const (
	// h2MaxStreams bounds concurrent streams per connection (RFC 9113
	// §5.1.2): x/net also caps the handlers it runs per connection at this
	// and refuses a client that keeps resetting streams beyond it, which is
	// what bounds a rapid reset (CVE-2023-44487).
	h2MaxStreams = 250
	// h2PingAfter sends a PING on a connection silent this long, and
	// h2PingTimeout closes it when no answer comes: a client that vanished
	// without a FIN does not hold its streams forever.
	h2PingAfter   = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// initH2 builds the HTTP/2 server from o. The header list limit (RFC 9113
// §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE) is the read buffer, the same bound
// an HTTP/1.1 head has; x/net refuses a header block beyond it however many
// CONTINUATION frames carry it (CVE-2023-45288).
func (p *Proxy) initH2(o *Options) error {
	idle := o.IdleTimeout
	if idle == 0 {
		idle = o.ReadTimeout
	}
	p.h2.srv = &http2.Server{
		MaxConcurrentStreams: h2MaxStreams,
		IdleTimeout:          idle,
		ReadIdleTimeout:      h2PingAfter,
		PingTimeout:          h2PingTimeout,
	}
	maxHeader := o.ReadBufferSize
	if maxHeader <= 0 {
		maxHeader = 4 << 10 // fasthttp's default read buffer
	}
	p.h2.base = &http.Server{
		Handler:        http.HandlerFunc(p.serveH2),
		MaxHeaderBytes: maxHeader,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	return http2.ConfigureServer(p.h2.base, p.h2.srv)
}

// sortConn decides whether c may be an HTTP/2 connection. If so it takes c
// and reports true: a goroutine of its own finds out (TLS handshake and
// ALPN, or the preface on a plain connection) and either serves HTTP/2 or
// hands c to out for fasthttp. Otherwise c is fasthttp's at once.
func (p *Proxy) sortConn(c net.Conn, out chan<- accepted, stop <-chan struct{}) bool {
	_, isTLS := c.(tlsConner)
	if !isTLS && !p.options().H2C {
		return false
	}
	go p.sortSlow(c, isTLS, out, stop)
	return true
}

// sortSlow is sortConn's goroutine. The handshake or the preface must come
// within ReadTimeout (10 s without one), as a request head must.
func (p *Proxy) sortSlow(c net.Conn, isTLS bool, out chan<- accepted, stop <-chan struct{}) {
	wait := p.options().ReadTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	h2 := false
	if isTLS {
		t := c.(tlsConner)
		if err := t.Handshake(); err != nil {
			p.log.Debug("tls handshake failed", "peer", c.RemoteAddr(), "err", err)
			_ = c.Close()
			return
		}
		h2 = t.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS
	} else {
		var got []byte
		got, c = peekPreface(c)
		h2 = bytes.Equal(got, h2Preface)
	}
	_ = c.SetReadDeadline(time.Time{})
	if h2 {
		p.serveH2Conn(c)
		return
	}
	select {
	case out <- accepted{c: c}:
	case <-stop:
		_ = c.Close()
	}
}

// peekPreface reads as much of the client's first bytes as can still be
// the HTTP/2 preface, leaving them to be read again. Behind the front door
// they wait there, to be validated as HTTP/1.1 if they are not a preface;
// without one, the connection returned replays them.
func peekPreface(c net.Conn) ([]byte, net.Conn) {
	if fd := frontDoorOf(c); fd != nil {
		got, _ := fd.Peek(h2Preface)
		return got, c
	}
	buf := make([]byte, 0, len(h2Preface))
	for len(buf) < len(h2Preface) && bytes.HasPrefix(h2Preface, buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	return buf, &replayConn{Conn: c, pending: buf}
}

// replayConn returns bytes already read from a connection before reading
// on. Its reads must come from one goroutine, as a server's do.
type replayConn struct {
	net.Conn
	pending []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// NetConn returns the connection beneath, for innermost.
func (r *replayConn) NetConn() net.Conn { return r.Conn }

// frontDoorOf finds the front door's connection under c's wrappers.
func frontDoorOf(c net.Conn) *frontdoor.Conn {
	for c != nil {
		if fd := frontdoor.Unwrap(c); fd != nil {
			return fd
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = nc.NetConn()
	}
	return nil
}

// h2ConnKey keys the client connection in each stream's context.
type h2ConnKey struct{}

// serveH2Conn serves c as HTTP/2 until it closes. The front door's HTTP/1.1
// validation is switched off for it: HTTP/2 frames are validated by the
// HTTP/2 server, and each request again by serveH2.
func (p *Proxy) serveH2Conn(c net.Conn) {
	if fd := frontDoorOf(c); fd != nil {
		fd.PassThrough()
	}
	p.h2.conns.Add(1)
	defer p.h2.conns.Done()
	if p.draining.Load() {
		_ = c.Close()
		return
	}
	ctx := context.WithValue(context.Background(), h2ConnKey{}, c)
	p.h2.srv.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: p.h2.base})
}

// shutdownH2 sends GOAWAY on every HTTP/2 connection (RFC 9113 §6.8): no
// new stream is taken, open ones run on.
func (p *Proxy) shutdownH2() {
	go func() { _ = p.h2.base.Shutdown(context.Background()) }()
}

// waitH2 waits until every HTTP/2 connection has ended or ctx ends.
func (p *Proxy) waitH2(ctx context.Context) {
	done := make(chan struct{})
	go func() { p.h2.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// alpnProtos is what a TLS listener in front of a proxy offers: HTTP/2
// first, then HTTP/1.1 (RFC 7301).
var alpnProtos = []string{http2.NextProtoTLS, "http/1.1"}

// ALPN returns the protocols a TLS listener in front of the proxy should
// offer, most preferred first.
func ALPN() []string { return append([]string(nil), alpnProtos...) }
