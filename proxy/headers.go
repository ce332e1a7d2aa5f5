package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

var (
	hdrXFF        = []byte("X-Forwarded-For")
	hdrXFProto    = []byte("X-Forwarded-Proto")
	hdrXFHost     = []byte("X-Forwarded-Host")
	hdrVia        = []byte("Via")
	hdrConnection = []byte("Connection")
	hdrCell       = []byte("X-Cellgate-Cell")
	hdrVersion    = []byte("X-Cellgate-Version")
	viaSelf       = []byte("1.1 cellgate")
	viaSelf10     = []byte("1.0 cellgate")
	protoHTTP     = []byte("http")
	protoHTTPS    = []byte("https")
	commaSpace    = []byte(", ")
)

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 §7.6.1, plus Proxy-Connection and Keep-Alive from RFC 2068 era
// clients that still send them). A proxy must not forward them. Trailer is
// not among them: it announces trailer fields, which pass (RFC 9110 §6.5).
var hopByHop = [][]byte{
	[]byte("Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Connection"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("TE"),
	[]byte("Transfer-Encoding"),
	[]byte("Upgrade"),
}

// scrub is per-request scratch for header hygiene. Names and values are
// copied into buf and referred to by offsets, because deleting headers
// reshuffles fasthttp's storage under any slices taken from it.
type scrub struct {
	buf  []byte
	toks []span // tokens named in Connection
	dels []span // header names to delete, as stored
	xff  span   // incoming X-Forwarded-For from a trusted peer, joined
	fwd  span   // incoming Forwarded from a trusted peer, joined
	via  span   // incoming Via, joined
	// exposed is the upstream's X-Cellgate-Exposed, joined (proxy/flags.go).
	exposed span
}

// span is buf[start:end].
type span struct{ start, end int }

func (s *scrub) reset() {
	s.buf, s.toks, s.dels = s.buf[:0], s.toks[:0], s.dels[:0]
	s.xff, s.fwd, s.via, s.exposed = span{}, span{}, span{}, span{}
}

func (s *scrub) bytes(sp span) []byte { return s.buf[sp.start:sp.end] }

// add copies b into buf and returns its span.
func (s *scrub) add(b []byte) span {
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return span{start, len(s.buf)}
}

// join appends b to the list in sp (", "-separated) and returns the new span.
// Lists are built at the end of buf, so sp is extended in place when it is
// the last thing written, and copied otherwise.
func (s *scrub) join(sp span, b []byte) span {
	if sp.end == sp.start {
		return s.add(b)
	}
	if sp.end != len(s.buf) {
		sp = s.add(s.buf[sp.start:sp.end])
	}
	s.buf = append(s.buf, commaSpace...)
	s.buf = append(s.buf, b...)
	return span{sp.start, len(s.buf)}
}

// noteConnectionTokens records the comma-separated names in a Connection
// value (RFC 9110 §7.6.1: each names a hop-by-hop header).
func (s *scrub) noteConnectionTokens(v []byte) {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if t = bytes.TrimSpace(t); len(t) > 0 {
			s.toks = append(s.toks, s.add(t))
		}
	}
}

// namedIn reports whether k equals (case-insensitively) one of list.
func namedIn(k []byte, list [][]byte) bool {
	for _, n := range list {
		if len(n) == len(k) && bytes.EqualFold(n, k) {
			return true
		}
	}
	return false
}

// isConnToken reports whether k was named in a Connection header.
func (s *scrub) isConnToken(k []byte) bool {
	for _, t := range s.toks {
		if b := s.bytes(t); len(b) == len(k) && bytes.EqualFold(b, k) {
			return true
		}
	}
	return false
}

// The walks below range over the concrete header types rather than an
// iter.Seq2 parameter: an opaque iterator makes the loop body escape, which
// costs two allocations per request.

// collectResponse walks h once, noting Connection tokens and every
// hop-by-hop header to delete; when Connection named further headers, a
// second walk finds them. Names are deleted afterwards, as stored (case
// preserved), because fasthttp's delete is exact-match with normalisation
// off.
func (s *scrub) collectResponse(h *fasthttp.ResponseHeader) {
	for k, v := range h.All() {
		s.visit(k, v)
	}
	if len(s.toks) > 0 {
		for k := range h.All() {
			s.visitNamed(k)
		}
	}
}

// visit is the first walk's step for one header.
func (s *scrub) visit(k, v []byte) {
	if equalFold(k, hdrExposed) { // cellgate's own: read, never passed on
		s.exposed = s.join(s.exposed, v)
		s.dels = append(s.dels, s.add(k))
		return
	}
	if namedIn(k, hopByHop) {
		if equalFold(k, hdrConnection) {
			s.noteConnectionTokens(v)
		}
		s.dels = append(s.dels, s.add(k))
	}
}

// visitNamed is the second walk's step: a header named in Connection that
// the first walk did not already mark.
func (s *scrub) visitNamed(k []byte) {
	if s.isConnToken(k) && !namedIn(k, hopByHop) {
		s.dels = append(s.dels, s.add(k))
	}
}

// prepareResponse applies header hygiene to an upstream response before it
// goes to the client, and adds Via naming the version the upstream answered
// with (RFC 9110 §7.6.3). Framing headers (Transfer-Encoding,
// Content-Length) are rewritten by the server for the body it sends.
func (s *scrub) prepareResponse(resp *fasthttp.ResponseHeader, http10 bool) {
	s.reset()
	s.collectResponse(resp)
	for _, d := range s.dels {
		resp.DelBytes(s.bytes(d))
	}
	resp.ResetConnectionClose()
	if http10 {
		resp.AddBytesKV(hdrVia, viaSelf10)
	} else {
		resp.AddBytesKV(hdrVia, viaSelf)
	}
}
