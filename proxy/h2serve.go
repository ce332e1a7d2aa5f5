package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// One HTTP/2 request runs the HTTP/1.1 request path: serveH2 writes the
// stream's header block as an HTTP/1.1 head (RFC 9113 §8.3.1: ":authority"
// becomes Host, names stay lowercase as HTTP/2 sends them, the pieces of a
// split Cookie are joined with "; " per §8.2.3), lets fasthttp parse it into
// a RequestCtx and calls Proxy.handle, so sticky key, pins, cell choice,
// header hygiene, SLO recording, error mapping and X-Cellgate-* are the
// same code for both versions. The response handle leaves in the RequestCtx
// is then written to the HTTP/2 stream, its body streamed with a flush per
// piece and its trailers sent as HTTP/2 trailers.
//
// The head is safe to re-frame: x/net has refused connection-specific
// fields, malformed pseudo-headers and CR, LF or NUL in names and values
// (RFC 9113 §8.2.1, §8.3), and checks DATA against content-length (§8.1.1);
// the body's framing is written here from what the stream declared, so no
// field of the client's can smuggle a second HTTP/1.1 request upstream.

// errH2Stream is what reading or writing the stand-in connection returns:
// a stream's bytes move through the HTTP/2 server, never through it.
var errH2Stream = errors.New("proxy: an HTTP/2 stream has no connection of its own")

// h2StreamConn is the connection a RequestCtx sees for one HTTP/2 stream:
// the client connection's addresses (peer for sticky keys and forwarding
// fields) and its request context, nothing that reads, writes or sets
// deadlines on the shared connection (the HTTP/2 server owns it).
type h2StreamConn struct {
	conn net.Conn
	ctx  context.Context // the stream's: cancelled when the client resets it
}

func (s *h2StreamConn) Read([]byte) (int, error)         { return 0, errH2Stream }
func (s *h2StreamConn) Write([]byte) (int, error)        { return 0, errH2Stream }
func (s *h2StreamConn) Close() error                     { return nil }
func (s *h2StreamConn) LocalAddr() net.Addr              { return s.conn.LocalAddr() }
func (s *h2StreamConn) RemoteAddr() net.Addr             { return s.conn.RemoteAddr() }
func (s *h2StreamConn) SetDeadline(time.Time) error      { return nil }
func (s *h2StreamConn) SetReadDeadline(time.Time) error  { return nil }
func (s *h2StreamConn) SetWriteDeadline(time.Time) error { return nil }

// h2StreamTLSConn is an h2StreamConn on a TLS connection, so the request
// path sees TLS (X-Forwarded-Proto: https) as fasthttp would.
type h2StreamTLSConn struct {
	h2StreamConn
	tls tlsConner
}

func (s *h2StreamTLSConn) Handshake() error { return nil }
func (s *h2StreamTLSConn) ConnectionState() tls.ConnectionState {
	return s.tls.ConnectionState()
}

// streamConnOf returns the stand-in connection for a stream of c.
func streamConnOf(c net.Conn, ctx context.Context) net.Conn {
	sc := h2StreamConn{conn: c, ctx: ctx}
	if t, ok := c.(tlsConner); ok {
		return &h2StreamTLSConn{sc, t}
	}
	return &sc
}

// streamContext is the HTTP/2 stream's context for a request that came
// over HTTP/2, else nil.
func streamContext(ctx *fasthttp.RequestCtx) context.Context {
	switch c := ctx.Conn().(type) {
	case *h2StreamConn:
		return c.ctx
	case *h2StreamTLSConn:
		return c.ctx
	}
	return nil
}

// serveH2 is the HTTP/2 server's handler: one stream, one request.
func (p *Proxy) serveH2(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(h2ConnKey{}).(net.Conn)
	if c == nil || r.Method == http.MethodConnect {
		// CONNECT (RFC 9113 §8.5) opens a tunnel, which cellgate does
		// not offer over HTTP/2.
		http.Error(w, "405 method not allowed: CONNECT", http.StatusMethodNotAllowed)
		return
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(streamConnOf(c, r.Context()), fasthttpLogger{p.log}, true)
	if err := readH2Head(&ctx.Request.Header, r); err != nil {
		p.log.Debug("http/2 request refused", "peer", c.RemoteAddr(), "err", err)
		w.Header().Set("X-Cellgate-Error", "bad-request")
		http.Error(w, "400 bad request\n", http.StatusBadRequest)
		return
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		ctx.Request.SetBodyStream(r.Body, int(r.ContentLength)) // -1: unknown, forwarded chunked
	}
	p.handle(ctx)
	p.writeH2Response(w, ctx)
}

// readH2Head fills h from HTTP/2 request r, refusing what its HTTP/1.1
// form could carry differently from what the client meant: a method that
// is not a token, a :path or :authority with bytes outside visible ASCII
// (a space would split the request line). x/net has checked names and
// values already; the head is parsed back by fasthttp like any request.
func readH2Head(h *fasthttp.RequestHeader, r *http.Request) error {
	if !httpguts.ValidHeaderFieldName(r.Method) {
		return fmt.Errorf("method %q is not a token", r.Method)
	}
	if !visibleASCII(r.RequestURI) || r.RequestURI == "" {
		return fmt.Errorf(":path %q: want visible ASCII", r.RequestURI)
	}
	if !visibleASCII(r.Host) || !httpguts.ValidHostHeader(r.Host) {
		return fmt.Errorf(":authority %q is not a host", r.Host)
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("field %s: value with control bytes", k)
			}
		}
	}
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(bytes.NewReader(appendH2Head(nil, r)))); err != nil {
		return fmt.Errorf("head: %w", err)
	}
	return nil
}

// visibleASCII reports whether s is all visible ASCII (0x21-0x7e).
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// appendH2Head appends the HTTP/1.1 head that stands for HTTP/2 request r:
// the request line with :path as sent, Host from :authority, every other
// field lowercased (as it was on the wire) with the Cookie pieces joined,
// and, for a body of undeclared length, chunked framing. Fields are in
// name order: HTTP/2 header blocks reach us as a map, and a stable order
// keeps the upstream's view deterministic.
func appendH2Head(dst []byte, r *http.Request) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.RequestURI...)
	dst = append(dst, " HTTP/1.1\r\nhost: "...)
	dst = append(dst, r.Host...)
	dst = append(dst, crlf...)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := r.Header[k]
		switch k {
		case "Host", "Transfer-Encoding":
			continue // :authority is the host; framing is written below
		case "Cookie":
			// x/net joins them already (httpcommon); a handler given a
			// request from elsewhere must not split them either.
			vs = []string{strings.Join(vs, "; ")}
		}
		lk := strings.ToLower(k)
		for _, v := range vs {
			dst = append(dst, lk...)
			dst = append(dst, colonSpace...)
			dst = append(dst, v...)
			dst = append(dst, crlf...)
		}
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		dst = append(dst, "transfer-encoding: chunked\r\n"...)
	}
	return append(dst, crlf...)
}

// h2Dropped are response fields that do not exist in HTTP/2 (RFC 9113
// §8.2.2) or that the writer sets itself (Content-Length, Trailer).
var h2Dropped = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Content-Length", "Trailer"}

// writeH2Response writes the response handle left in ctx to the stream.
// A streamed body is flushed piece by piece (server streaming, SSE); an
// upstream body that fails resets the stream (http.ErrAbortHandler) so the
// client cannot take a cut body for a whole one.
func (p *Proxy) writeH2Response(w http.ResponseWriter, ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	h := w.Header()
	// The response is the upstream's: no sniffed Content-Type, no Date of
	// our own (nil values suppress them, net/http's rule).
	h["Content-Type"], h["Date"] = nil, nil
	for k, v := range resp.Header.All() {
		if slices.ContainsFunc(h2Dropped, func(d string) bool { return equalFold(k, []byte(d)) }) {
			continue
		}
		h.Add(string(k), string(v))
	}
	stream := resp.IsBodyStream()
	if stream && resp.Header.ContentLength() >= 0 {
		h.Set("Content-Length", strconv.Itoa(resp.Header.ContentLength()))
	}
	w.WriteHeader(resp.StatusCode())
	if !stream {
		if len(resp.Body()) > 0 {
			_, _ = w.Write(resp.Body())
		}
		addH2Trailers(h, &resp.Header)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	rerr := copyFlushing(w, rc, resp.BodyStream())
	addH2Trailers(h, &resp.Header)
	_ = resp.CloseBodyStream()
	if rerr != nil {
		panic(http.ErrAbortHandler) // RST_STREAM: the body is incomplete
	}
}

// addH2Trailers hands the response's trailer fields to the HTTP/2 writer.
func addH2Trailers(h http.Header, rh *fasthttp.ResponseHeader) {
	for rest := rh.TrailerHeader(); len(rest) > 2; {
		var k, v []byte
		k, v, _, rest = nextField(rest)
		if len(k) > 0 {
			h.Add(http.TrailerPrefix+string(k), string(v))
		}
	}
}

// copyFlushing copies body to w, flushing after each piece. It returns the
// body's error (a failed upstream), not the client's.
func copyFlushing(w io.Writer, rc *http.ResponseController, body io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; Close settles the rest
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
