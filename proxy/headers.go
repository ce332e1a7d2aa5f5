package proxy

import (
	"bytes"
	"net/netip"

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
	protoHTTP     = []byte("http")
	protoHTTPS    = []byte("https")
	commaSpace    = []byte(", ")
)

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 §7.6.1, plus Proxy-Connection and Keep-Alive from RFC 2068 era
// clients that still send them). A proxy must not forward them.
var hopByHop = [][]byte{
	[]byte("Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Connection"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("TE"),
	[]byte("Trailer"),
	[]byte("Transfer-Encoding"),
	[]byte("Upgrade"),
}

// requestOwned are request headers the proxy sets itself; client copies are
// removed before the proxy's values are written. Expect is dropped because
// the server already answered 100-continue and read the whole body.
var requestOwned = [][]byte{hdrXFF, hdrXFProto, hdrXFHost, hdrVia, []byte("Expect")}

// scrub is per-request scratch for header hygiene. Names and values are
// copied into buf and referred to by offsets, because deleting headers
// reshuffles fasthttp's storage under any slices taken from it.
type scrub struct {
	buf  []byte
	toks []span // tokens named in Connection
	dels []span // header names to delete, as stored
	xff  span   // incoming X-Forwarded-For, joined
	via  span   // incoming Via, joined
}

// span is buf[start:end].
type span struct{ start, end int }

func (s *scrub) reset() {
	s.buf, s.toks, s.dels = s.buf[:0], s.toks[:0], s.dels[:0]
	s.xff, s.via = span{}, span{}
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

// collectRequest walks h once, noting Connection tokens, the incoming
// X-Forwarded-For and Via and every header to delete; when Connection named
// further headers, a second walk finds them. Names are deleted afterwards,
// as stored (case preserved), because fasthttp's delete is exact-match with
// normalisation off.
func (s *scrub) collectRequest(h *fasthttp.RequestHeader) {
	for k, v := range h.All() {
		s.visit(k, v, true)
	}
	if len(s.toks) > 0 {
		for k := range h.All() {
			s.visitNamed(k)
		}
	}
}

// collectResponse is collectRequest for a response header.
func (s *scrub) collectResponse(h *fasthttp.ResponseHeader) {
	for k, v := range h.All() {
		s.visit(k, v, false)
	}
	if len(s.toks) > 0 {
		for k := range h.All() {
			s.visitNamed(k)
		}
	}
}

// visit is the first walk's step for one header.
func (s *scrub) visit(k, v []byte, isReq bool) {
	switch {
	case namedIn(k, hopByHop):
		if len(k) == len(hdrConnection) && bytes.EqualFold(k, hdrConnection) {
			s.noteConnectionTokens(v)
		}
		s.dels = append(s.dels, s.add(k))
	case isReq && namedIn(k, requestOwned):
		if bytes.EqualFold(k, hdrXFF) {
			s.xff = s.join(s.xff, v)
		} else if bytes.EqualFold(k, hdrVia) {
			s.via = s.join(s.via, v)
		}
		s.dels = append(s.dels, s.add(k))
	}
}

// visitNamed is the second walk's step: a header named in Connection that
// the first walk did not already mark.
func (s *scrub) visitNamed(k []byte) {
	if s.isConnToken(k) && !namedIn(k, hopByHop) && !namedIn(k, requestOwned) {
		s.dels = append(s.dels, s.add(k))
	}
}

// prepareRequest applies header hygiene to a request about to be forwarded:
// hop-by-hop headers and those named in Connection go; X-Forwarded-For gets
// the peer appended; X-Forwarded-Proto, X-Forwarded-Host and Via are set.
// Host passes through untouched.
func (s *scrub) prepareRequest(req *fasthttp.RequestHeader, peer netip.Addr, tls bool) {
	s.reset()
	s.collectRequest(req)
	for _, d := range s.dels {
		req.DelBytes(s.bytes(d))
	}
	// Connection: close from the client ends the client connection (the
	// server decided that before the handler ran); upstream connections
	// stay keep-alive.
	req.ResetConnectionClose()

	if peer.IsValid() {
		start := len(s.buf)
		s.buf = peer.AppendTo(s.buf)
		s.xff = s.join(s.xff, s.buf[start:])
	}
	if s.xff.end > s.xff.start {
		req.SetBytesKV(hdrXFF, s.bytes(s.xff))
	}
	if tls {
		req.SetBytesKV(hdrXFProto, protoHTTPS)
	} else {
		req.SetBytesKV(hdrXFProto, protoHTTP)
	}
	if host := req.Host(); len(host) > 0 {
		req.SetBytesKV(hdrXFHost, host)
	}
	s.via = s.join(s.via, viaSelf)
	req.SetBytesKV(hdrVia, s.bytes(s.via))
}

// prepareResponse applies header hygiene to an upstream response before it
// goes to the client, and adds Via. Framing headers (Transfer-Encoding,
// Content-Length) are rewritten by the server for the body it sends.
func (s *scrub) prepareResponse(resp *fasthttp.ResponseHeader) {
	s.reset()
	s.collectResponse(resp)
	for _, d := range s.dels {
		resp.DelBytes(s.bytes(d))
	}
	resp.ResetConnectionClose()
	resp.AddBytesKV(hdrVia, viaSelf)
}
