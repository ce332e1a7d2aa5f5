package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// bufferedBodyMax is the largest known-length response body read whole
// before the response is sent; anything larger, chunked or delimited by
// connection close is streamed. Buffering small bodies lets the upstream
// connection go back to the pool before the client has read a byte.
const bufferedBodyMax = 64 << 10

// The fasthttp pool hands out connections of an unexported type. These
// method expressions let the proxy hold one in an interface (which does not
// allocate for a pointer) and give it back with its static type recovered.
var (
	releaseConn = (*fasthttp.HostClient).ReleaseConn
	closeConn   = (*fasthttp.HostClient).CloseConn
)

// giveBack returns cc to hc's pool with f (releaseConn or closeConn).
func giveBack[C any](f func(*fasthttp.HostClient, C), hc *fasthttp.HostClient, cc any) {
	f(hc, cc.(C))
}

// upstreamConn is a connection taken from an endpoint's pool for one
// request, with the buffered reader its response is read through.
type upstreamConn struct {
	ep   *endpoint
	cc   any // the pool's *clientConn
	conn net.Conn
	br   *bufio.Reader
}

// done gives the connection back: to the pool when reusable, closed
// otherwise (a failed, timed-out or half-read exchange leaves unknown bytes
// on it; ARCHITECTURE.md "Pitfalls").
func (u *upstreamConn) done(reusable bool) {
	hc := u.ep.client
	if u.br != nil {
		hc.ReleaseReader(u.br)
	}
	if reusable {
		giveBack(releaseConn, hc, u.cc)
	} else {
		giveBack(closeConn, hc, u.cc)
	}
	*u = upstreamConn{}
}

// roundTrip sends the request (st.head, then the client's body) to ep and
// reads the response head into ctx.Response. A small known-length body is
// read too and the connection returned; otherwise the body is left to
// stream from st (see reqState.Read) and st.conn holds the connection. sent
// reports whether any byte may have reached the upstream, which is what
// makes a retry unsafe. lost reports the exception: no byte of the client's
// body had been read and the connection was closed or reset (EOF,
// ECONNRESET, EPIPE) before a single response byte arrived — the upstream
// lost it: it closed a pooled connection that sat idle (a restart, an idle
// timeout racing our reuse) or it died with the request in its accept queue
// or in hand. An idempotent request may then be repeated (RFC 9110 §9.2.2),
// as Go's net/http does on a reused connection and nginx does by default
// (proxy_next_upstream error). A body of which any byte was read is never
// sent twice: it streamed. A timeout is not a loss: the upstream may be
// working on the request.
//
// lost once required io.EOF from a pooled connection; a pooled connection
// the upstream reset (RST rather than FIN, as a killed process's sockets
// are) answered 502 to GETs that a retry would have served, which made
// TestZeroDowntime/upstream-killed-and-restarted flaky under load.
//
// It does not use HostClient.Do: Do re-serialises the request from the
// parsed URI and header (normalising the target, rewriting cookies; see
// reqhead.go), would buffer streamed bodies, and cannot tell a dial failure
// from a failure after the request was written, which the retry rule needs.
func (st *reqState) roundTrip(ctx *fasthttp.RequestCtx, ep *endpoint) (sent, lost bool, err error) {
	hc, opts := ep.client, &st.set.opts
	st.respByte = false
	cc, err := hc.AcquireConn(0, false)
	if err != nil {
		return false, false, err
	}
	u := &st.conn
	*u = upstreamConn{ep: ep, cc: cc, conn: cc.Conn()}
	uc, ok := u.conn.(*upConn)
	st.upReused = ok && uc.reused()
	if ok && st.bodiless(ctx) && uc.warm(st.start) {
		// Write-and-wait (upconn.go): the head goes out with the first
		// read of the response, so its errors come from readResponse,
		// where the lost rule is the same (no body byte was read).
		uc.sendWithRead(st.head)
	} else {
		bw := hc.AcquireWriter(u.conn)
		err = st.sendRequest(ctx, bw, st.writeDeadline)
		hc.ReleaseWriter(bw)
		if err != nil {
			u.done(false)
			return true, st.bodyRead == 0 && connLost(err), err
		}
	}
	if opts.UpstreamReadTimeout > 0 {
		_ = u.conn.SetReadDeadline(time.Now().Add(opts.UpstreamReadTimeout))
	}
	u.br = hc.AcquireReader(u.conn)
	st.gotHead = false
	if err = st.readResponse(ctx); err != nil {
		u.done(false)
		return true, st.bodyRead == 0 && !st.respByte && connLost(err), err
	}
	return true, false, nil
}

// bodiless reports whether the request has no body to send upstream
// (sendRequest would write the head alone).
func (st *reqState) bodiless(ctx *fasthttp.RequestCtx) bool {
	return st.bodyLen == -2 || ctx.RequestBodyStream() == nil
}

// connLost reports whether err says the peer closed or reset the
// connection (not a timeout, not our own doing).
func connLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeDeadline renews the upstream write deadline before each write, so
// UpstreamWriteTimeout bounds a stalled upstream, not a long upload.
func (st *reqState) writeDeadline() {
	if t := st.set.opts.UpstreamWriteTimeout; t > 0 {
		_ = st.conn.conn.SetWriteDeadline(time.Now().Add(t))
	}
}

// readResponse reads the response head (skipping 1xx interim responses)
// and either the whole body or sets up streaming.
func (st *reqState) readResponse(ctx *fasthttp.RequestCtx) error {
	resp, br := &ctx.Response, st.conn.br
	for {
		framing, raw, err := peekHead(br)
		if err != nil {
			st.respByte = st.respByte || br.Buffered() > 0 // part of a head, then the error
			return err
		}
		st.respByte = true
		st.upFraming = framing
		st.upHead.build(raw, &st.scrub, st.set.opts.ResponseHeaders)
		if err := readHeadInto(&resp.Header, br, raw); err != nil {
			return err
		}
		sc := resp.StatusCode()
		if sc == fasthttp.StatusSwitchingProtocols {
			return errUnaskedSwitch // only a WebSocket handshake may (tunnelshake.go)
		}
		if sc >= 200 {
			break
		}
	}
	st.gotHead = true
	st.ttfb = time.Now()
	if uc, ok := st.conn.conn.(*upConn); ok {
		uc.lastDone = st.ttfb // before done hands the connection to another request
	}
	// RFC 9112 §6.3: with both Content-Length and Transfer-Encoding the
	// chunked coding frames the body (fasthttp reads it so, whatever the
	// order) and the connection is closed afterwards — the upstream may
	// have meant the other reading, and the next response would start
	// inside this body.
	st.upClose = resp.Header.ConnectionClose() || st.upFraming&headBothLengths != 0
	cl := resp.Header.ContentLength()
	switch sc := resp.StatusCode(); {
	case ctx.IsHead() || sc == fasthttp.StatusNoContent || sc == fasthttp.StatusNotModified || sc < 200:
		st.conn.done(!st.upClose)
	case cl >= 0 && cl <= bufferedBodyMax:
		resp.StreamBody = false
		if err := resp.ReadBody(br, 0); err != nil {
			return err
		}
		st.conn.done(!st.upClose)
	case cl >= 0:
		// A known length is read straight from the connection's reader
		// (and spliced past it where it can be: splice.go).
		st.lim = io.LimitedReader{R: br, N: int64(cl)}
		st.body = &st.lim
		st.upLen = int64(cl)
		st.reusable = !st.upClose
		st.streaming = true
		st.resp = &resp.Header
	case cl == -1:
		// A chunked body is read by chunkReader (chunked.go), as the loop
		// core reads it; its trailer fields go to a response of our own
		// (forwardTrailers).
		up := &st.upResp
		up.Reset()
		st.chunks.reset(br, &up.Header)
		st.body = &st.chunks
		st.upLen = -1
		st.reusable = !st.upClose
		st.streaming = true
		st.resp = &resp.Header // the handler attaches st as the body stream
	default:
		// A close-delimited body is read through a response of our own, so
		// fasthttp's body stream can be used without it owning
		// ctx.Response.
		up := &st.upResp
		up.Reset()
		up.Header.SetContentLength(cl)
		up.StreamBody = true
		if err := up.ReadBody(br, 0); err != nil {
			return err
		}
		st.body = up.BodyStream()
		st.upLen = int64(cl)
		st.reusable = cl != -2 && !st.upClose // -2: body ends at close
		st.streaming = true
		st.resp = &resp.Header // the handler attaches st as the body stream
	}
	return nil
}

// Read streams the upstream body to the server's writer. Each read renews
// the upstream read deadline, and each piece read renews the client write
// deadline for the write that follows, so the timeouts bound silence, not
// the life of a long stream (SSE), and a client that stops reading is cut
// after WriteTimeout and frees the upstream connection (issue 13 item 3). An upstream body that ends early or is
// malformed is an error here, never a clean end: the server then aborts
// the client connection (see Close).
func (st *reqState) Read(b []byte) (int, error) {
	opts := st.p.options() // the current settings: a reload applies to a running stream's next read
	if opts.UpstreamReadTimeout > 0 {
		_ = st.conn.conn.SetReadDeadline(time.Now().Add(opts.UpstreamReadTimeout))
	}
	n, err := st.body.Read(b)
	// The client's write deadline starts when there is something to write,
	// not before the upstream read: an SSE stream may be silent for longer
	// than WriteTimeout without its client being slow.
	if n > 0 && opts.WriteTimeout > 0 && st.client != nil {
		_ = st.client.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
	}
	st.upRead += int64(n)
	switch {
	case err == io.EOF && st.upLen >= 0 && st.upRead != st.upLen:
		err = fmt.Errorf("upstream body: %w after %d of %d bytes", io.ErrUnexpectedEOF, st.upRead, st.upLen)
		st.upErr = err
	case err == io.EOF:
		st.eof = true
		st.forwardTrailers()
	case err != nil:
		st.upErr = err
	}
	return n, err
}

// forwardTrailers hands the upstream's trailer fields (RFC 9110 §6.5) to
// the client's response, which the server writes after the last chunk.
// Names the upstream did not announce in Trailer are announced late, which
// only adds them to the trailer section.
func (st *reqState) forwardTrailers() {
	tr := st.upResp.Header.TrailerHeader()
	for rest := tr; len(rest) > 2; {
		var k, v []byte
		k, v, _, rest = nextField(rest)
		if len(k) == 0 {
			continue
		}
		_ = st.resp.AddTrailerBytes(k)
		st.resp.AddBytesKV(k, v)
	}
}

// Close ends a streamed response: the server calls it once the body is
// written or writing failed. The connection is reused only when the body
// was read to its end. An upstream body that failed is the cell's failure:
// it is logged with its own cause, counted as 502 upstream-truncated, and
// the client connection is reset rather than ended cleanly, so no client
// can take a cut body for a whole one.
func (st *reqState) Close() error {
	_ = st.upResp.CloseBodyStream()
	st.body = nil
	st.conn.done(st.eof && st.reusable)
	if err := st.upErr; err != nil {
		st.p.log.Warn("upstream response incomplete; client connection aborted",
			"cause", causes[causeTruncated].header, "cell", st.cell.name, "endpoint", st.ep.addr, "err", err)
		st.p.noteFailure(st.cell, st.ep, causeTruncated, false)
		abortConn(st.client)
		st.acc.cause = causeTruncated
		st.finish(causes[causeTruncated].status, true)
		return nil
	}
	st.finish(st.status, false)
	return nil
}
