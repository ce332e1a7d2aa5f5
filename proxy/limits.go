package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"time"
)

// The connection cap (Options.MaxConns) is enforced by the proxy's own
// listener rather than left to fasthttp. fasthttp's Concurrency limit answers
// a connection over it from inside its accept loop with a bare 503 ("The
// connection cannot be served because Server.Concurrency limit exceeded",
// no X-Cellgate-Error, ErrorHandler not called) and closes it at once: a
// client that has already sent its request then gets a TCP reset, which
// usually destroys the 503 in flight (RFC 9112 §9.6). Here a connection over
// the cap gets a short 503 with X-Cellgate-Error: too-many-connections, its
// write side shut, and its request drained briefly, off the accept loop.

// ConnStats counts client connections.
type ConnStats struct {
	// Open is the number of client connections being served now.
	Open int
	// Refused counts connections answered 503 too-many-connections since
	// the proxy was built.
	Refused uint64
}

// ConnStats returns the current client connection counts.
func (p *Proxy) ConnStats() ConnStats {
	return ConnStats{Open: p.conns.open(), Refused: p.conns.refused.Load()}
}

// serverConcurrency is fasthttp's Concurrency for a cap of maxConns. The
// tracker forgets a connection when fasthttp closes it, a moment before
// fasthttp frees that connection's worker; the slack keeps fasthttp's own,
// less helpful refusal from firing in that window. Zero keeps fasthttp's
// default (256 Ki connections).
func serverConcurrency(maxConns int) int {
	if maxConns <= 0 {
		return 0
	}
	return maxConns + maxConns/8 + 16
}

const (
	// refuseTimeout bounds the whole answer to a refused connection:
	// writing the 503 and draining what the client sent. Short, because
	// refusals happen under overload.
	refuseTimeout = 500 * time.Millisecond
	// refuseDrainBytes bounds what a refused client can make us read.
	refuseDrainBytes = 64 << 10
	// maxLingering bounds the refusals answered at once (one goroutine
	// and one descriptor each); the descriptor budget may lower it. Beyond
	// it a refused connection is closed with no answer: in a connection
	// flood the cheapest response is the right one.
	maxLingering = 512
)

// tooManyConns is the complete answer to a connection over the cap.
var tooManyConns = func() []byte {
	body := "503 service unavailable: too many connections\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Connection: close\r\n" +
		"X-Cellgate-Error: too-many-connections\r\n" +
		"\r\n" + body)
}()

// refuse answers c, a connection over the cap, and closes it, without
// blocking the accept loop.
func (t *connTracker) refuse(c net.Conn) {
	t.refused.Add(1)
	if t.lingering.Add(1) > t.maxLingering {
		t.lingering.Add(-1)
		_ = c.Close()
		return
	}
	go t.answerRefused(c)
}

// answerRefused writes the 503, shuts the write side and reads what the
// client still sends until it closes or refuseTimeout passes, so that the
// close is a FIN after the 503 rather than a reset before it.
func (t *connTracker) answerRefused(c net.Conn) {
	defer t.lingering.Add(-1)
	defer c.Close()
	if _, ok := c.(tlsConner); ok {
		return // a 503 would first need a TLS handshake; fasthttp does the same
	}
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	if _, err := c.Write(tooManyConns); err != nil {
		return
	}
	raw := innermost(c)
	if cw, ok := raw.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_, _ = io.CopyN(io.Discard, raw, refuseDrainBytes)
	}
}

// tlsConner is what fasthttp takes to mean a TLS connection.
type tlsConner interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// innermost unwraps connection wrappers that expose what they wrap
// (NetConn, as crypto/tls and the front door do), so draining a refused
// connection reads the socket, not a validator.
func innermost(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = u.NetConn()
	}
}
