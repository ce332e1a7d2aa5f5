package proxy

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// An HTTP/2 endpoint's connections are capped like an HTTP/1.1 pool's:
// MaxConnsPerEndpoint (zero: fasthttp's default, 512). The transport opens
// a connection when the ones it has are at their stream limit; past the
// cap that dial fails with errH2ConnLimit, which answers 503 upstream-busy
// (gRPC: RESOURCE_EXHAUSTED) unless another endpoint takes the request —
// nothing was sent — and leaves the endpoint's health alone, as a full
// HTTP/1.1 pool does.

// errH2ConnLimit is the dial refused by the connection cap.
var errH2ConnLimit = errors.New("http2 endpoint connection limit reached")

// h2ConnCap returns the connection cap in force.
func (p *Proxy) h2ConnCap() int64 {
	if n := p.options().MaxConnsPerEndpoint; n > 0 {
		return int64(n)
	}
	return fasthttp.DefaultMaxConnsPerHost
}

// dialCounted dials addr when open is below the cap, and returns a
// connection that gives its place back when closed.
func (p *Proxy) dialCounted(ctx context.Context, addr string, open *atomic.Int64) (net.Conn, error) {
	if open.Add(1) > p.h2ConnCap() {
		open.Add(-1)
		return nil, errH2ConnLimit
	}
	c, err := p.dialContext(ctx, addr)
	if err != nil {
		open.Add(-1)
		return nil, err
	}
	return &countedConn{Conn: c, open: open}, nil
}

// countedConn is an HTTP/2 upstream connection counted in its endpoint's
// open connections until it is closed.
type countedConn struct {
	net.Conn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}
