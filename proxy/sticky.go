package proxy

import (
	"bytes"
	"net/netip"
	"unsafe"

	"github.com/cellgate/cellgate/balancer"
	"github.com/valyala/fasthttp"
)

// keySources is the compiled routing.sticky_key list plus what the "ip"
// source needs.
type keySources struct {
	srcs    []balancer.Source
	names   [][]byte // srcs[i].Name as bytes, for allocation-free compares
	trusted []netip.Prefix
}

func newKeySources(srcs []balancer.Source, trusted []netip.Prefix) keySources {
	ks := keySources{srcs: srcs, trusted: trusted, names: make([][]byte, len(srcs))}
	for i, s := range srcs {
		ks.names[i] = []byte(s.Name)
	}
	return ks
}

// extract returns the sticky key of req from the first source that is
// present (non-empty) and that source's index, or (nil, -1) when none is.
// peer is the connection's remote address, peerText the same as text (nil:
// written here). The key aliases req, peerText or buf; buf
// is scratch space returned for reuse. extract never allocates once buf has
// grown and never panics on arbitrary input (FuzzStickyKey).
func (ks *keySources) extract(req *fasthttp.Request, peer netip.Addr, peerText, buf []byte) (key []byte, src int, _ []byte) {
	for i, s := range ks.srcs {
		switch s.Kind {
		case balancer.SourceHeader:
			key = peekFold(&req.Header, s.Name, ks.names[i])
		case balancer.SourceCookie:
			key = req.Header.Cookie(s.Name)
		case balancer.SourceQuery:
			key = queryParam(req.Header.RequestURI(), ks.names[i])
		case balancer.SourceIP:
			key, buf = ks.clientIP(&req.Header, peer, peerText, buf)
		}
		if len(key) > 0 {
			return key, i, buf
		}
	}
	return nil, -1, buf
}

// clientIP returns the client address as text: the peer, or, when the peer
// is a trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (ks *keySources) clientIP(h *fasthttp.RequestHeader, peer netip.Addr, peerText, buf []byte) ([]byte, []byte) {
	if ks.isTrusted(peer) {
		if ip := ks.forwardedClient(peekFold(h, "X-Forwarded-For", hdrXFF)); len(ip) > 0 {
			return ip, buf
		}
	}
	if !peer.IsValid() {
		return nil, buf
	}
	if peerText != nil {
		return peerText, buf
	}
	buf = peer.AppendTo(buf[:0])
	return buf, buf
}

func (ks *keySources) isTrusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ks.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient walks X-Forwarded-For from the right (the entry our
// trusted peer appended) past further trusted proxies and returns the first
// untrusted address; when every entry is trusted, the leftmost. An entry
// that is not an address ends the walk: what lies left of it is unverifiable.
func (ks *keySources) forwardedClient(xff []byte) []byte {
	var last []byte
	for len(xff) > 0 {
		var entry []byte
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			entry, xff = xff[i+1:], xff[:i]
		} else {
			entry, xff = xff, nil
		}
		entry = bytes.TrimSpace(entry)
		a, ok := parseAddr(entry)
		if !ok {
			return last
		}
		if !ks.isTrusted(a) {
			return entry
		}
		last = entry
	}
	return last
}

// parseAddr parses b as an IP address without copying it. The string view
// of b lives only for the call; a parsed zone would alias b, so zoned
// addresses (never valid in X-Forwarded-For) are rejected.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	return a.Unmap(), err == nil
}

// peekFold returns the first value of the header named name, compared
// case-insensitively (RFC 9110 §5.1). Header-name normalisation is off so
// names pass through unchanged, which makes fasthttp's Peek exact-match; it
// is tried first because clients usually send the configured spelling.
func peekFold(h *fasthttp.RequestHeader, name string, nameB []byte) []byte {
	if v := h.Peek(name); len(v) > 0 {
		return v
	}
	for k, v := range h.All() {
		if len(k) == len(nameB) && bytes.EqualFold(k, nameB) && len(v) > 0 {
			return v
		}
	}
	return nil
}

// queryParam returns the raw (not percent-decoded) value of the first query
// parameter named name in a request target, or nil. Raw bytes are a stable
// key; decoding would only cost time.
func queryParam(uri, name []byte) []byte {
	q := bytes.IndexByte(uri, '?')
	if q < 0 {
		return nil
	}
	uri = uri[q+1:]
	if f := bytes.IndexByte(uri, '#'); f >= 0 {
		uri = uri[:f]
	}
	for len(uri) > 0 {
		var pair []byte
		if i := bytes.IndexByte(uri, '&'); i >= 0 {
			pair, uri = uri[:i], uri[i+1:]
		} else {
			pair, uri = uri, nil
		}
		k, v := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if bytes.Equal(k, name) && len(v) > 0 {
			return v
		}
	}
	return nil
}

// hasCookieSource reports whether srcs already reads cookie name.
func hasCookieSource(srcs []balancer.Source, name string) bool {
	for _, s := range srcs {
		if s.Kind == balancer.SourceCookie && s.Name == name {
			return true
		}
	}
	return false
}

func cookieSource(name string) balancer.Source {
	return balancer.Source{Kind: balancer.SourceCookie, Name: name}
}
