package proxy

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/cellgate/cellgate/internal/ows"
	"github.com/valyala/fasthttp"
)

// The upstream request head is written from the client's own bytes, not
// re-serialised from fasthttp's parsed request: the parsed URI is decoded
// and normalised (%2F → /, dot segments resolved, // collapsed — a
// path-confusion bypass once the upstream authorises on the path) and
// iterating the parsed header re-serialises cookies (quotes stripped,
// values with '"' dropped, two Cookie fields merged). The front door has
// already held the head to one strict reading (CRLF lines, no obs-fold,
// token names, visible-ASCII target), so copying its lines is safe.
//
// What changes, and nothing else (README "What cellgate changes"):
//   - the version becomes HTTP/1.1 (we speak 1.1 upstream; Via names the
//     version received);
//   - hop-by-hop fields go (RFC 9110 §7.6.1), with every field named in
//     Connection; Expect goes (cellgate answered 100 Continue itself);
//   - X-Forwarded-For and Forwarded are appended to (trusted peer) or
//     replaced (anyone else); X-Forwarded-Proto and X-Forwarded-Host are
//     set; Via is appended to;
//   - Host is added for an HTTP/1.0 request without one;
//   - a chunked body is re-chunked by cellgate (Transfer-Encoding: chunked),
//     its trailer fields passed on after the last chunk.

var (
	hdrForwarded = []byte("Forwarded")
	hdrExpect    = []byte("Expect")
	hdrHost      = []byte("Host")
	hdrTE        = []byte("Transfer-Encoding")
	crlf         = []byte("\r\n")
	colonSpace   = []byte(": ")
)

// forwardedOwned are request fields whose client copies never pass as
// sent: cellgate writes its own (appending to the trusted ones).
var forwardedOwned = [][]byte{hdrXFF, hdrXFProto, hdrXFHost, hdrVia, hdrForwarded, hdrExpect, hdrFlags, hdrOverride}

// headInfo is what the upstream head needs beyond the client's bytes.
type headInfo struct {
	peer netip.Addr // the client connection's address (invalid: not IP)
	// peerText is peer as text (appendPeer); nil: written from peer.
	peerText []byte
	trusted  bool   // peer is in routing.trusted_proxies: append to its X-Forwarded-For/Forwarded
	tls      bool   // the listener that took the request is TLS
	host     string // Host to add when the request has none (HTTP/1.0)
	chunked  bool   // the body is forwarded chunked
	// tunnel writes "Upgrade: websocket" and "Connection: Upgrade" anew (a
	// WebSocket handshake, see tunnelshake.go: the client's Upgrade list
	// may name h2c too, which is never forwarded); otherwise both are
	// hop-by-hop and go.
	tunnel bool
	// trace is a trace started here (trace.go); nil: the client's trace
	// context passes as it came.
	trace *traceHead
	// flags is the X-Cellgate-Flags value (proxy/flags.go); empty: none.
	flags []byte
}

// nextField splits the first "name: value\r\n" line off raw. line is the
// whole line with its CRLF; value has surrounding whitespace trimmed.
// Lines without a colon (impossible behind the front door) come back with
// an empty name and are dropped by the caller.
func nextField(raw []byte) (name, value, line, rest []byte) {
	end := bytes.IndexByte(raw, '\n')
	if end < 0 {
		line, rest = raw, nil
	} else {
		line, rest = raw[:end+1], raw[end+1:]
	}
	body := trimCRLF(line)
	if i := bytes.IndexByte(body, ':'); i > 0 {
		name, value = body[:i], ows.Trim(body[i+1:])
	}
	return name, value, line, rest
}

// appendRequestHead appends the head cellgate sends upstream for the
// request whose parsed header is h and whose field lines as received are
// raw (h.RawHeaders(), or the loop's own scan: loopreqhead.go): the
// request line with the target exactly as received, the client's field
// lines byte for byte and in order less the ones listed above, then
// cellgate's own fields.
func (s *scrub) appendRequestHead(dst []byte, h *fasthttp.RequestHeader, raw []byte, in *headInfo) []byte {
	s.reset()
	// First pass: the names Connection lists, and the trusted chains.
	for rest := raw; len(rest) > 0; {
		var k, v []byte
		k, v, _, rest = nextField(rest)
		switch {
		case equalFold(k, hdrConnection):
			s.noteConnectionTokens(v)
		case in.trusted && equalFold(k, hdrXFF):
			s.xff = s.join(s.xff, v)
		case in.trusted && equalFold(k, hdrForwarded):
			s.fwd = s.join(s.fwd, v)
		case equalFold(k, hdrVia):
			s.via = s.join(s.via, v)
		}
	}

	dst = append(dst, h.Method()...)
	dst = append(dst, ' ')
	dst = append(dst, h.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	hasHost := false
	for rest := raw; len(rest) > 0; {
		var k, line []byte
		k, _, line, rest = nextField(rest)
		switch {
		case len(k) == 0:
		case namedIn(k, hopByHop), namedIn(k, forwardedOwned), s.isConnToken(k), in.trace.dropsField(k):
		default:
			hasHost = hasHost || equalFold(k, hdrHost)
			dst = append(dst, line...)
		}
	}
	if !hasHost && in.host != "" {
		dst = append(dst, "Host: "...)
		dst = append(dst, in.host...)
		dst = append(dst, crlf...)
	}
	return s.appendForwarding(dst, h, in)
}

// appendForwarding appends cellgate's own fields and ends the head.
// X-Forwarded-For and Forwarded follow one trust rule: from a trusted peer
// its chain is kept and the peer appended; from anyone else the client's
// copies were dropped and the chain starts at the peer (routing.trusted_proxies).
func (s *scrub) appendForwarding(dst []byte, h *fasthttp.RequestHeader, in *headInfo) []byte {
	peer := in.peerText
	if in.peer.IsValid() {
		if peer == nil {
			start := len(s.buf)
			s.buf = in.peer.AppendTo(s.buf)
			peer = s.buf[start:]
		}
		s.xff = s.join(s.xff, peer)
	}
	if s.xff.end > s.xff.start {
		dst = appendField(dst, hdrXFF, s.bytes(s.xff))
	}
	proto := protoHTTP
	if in.tls {
		proto = protoHTTPS
	}
	dst = appendField(dst, hdrXFProto, proto)
	host := h.Host()
	if len(host) > 0 {
		dst = appendField(dst, hdrXFHost, host)
	}
	dst = append(dst, hdrForwarded...)
	dst = append(dst, colonSpace...)
	if s.fwd.end > s.fwd.start {
		dst = append(dst, s.bytes(s.fwd)...)
		dst = append(dst, commaSpace...)
	}
	dst = appendForwardedElement(dst, in.peer, peer, proto, host)
	dst = append(dst, crlf...)

	dst = append(dst, hdrVia...)
	dst = append(dst, colonSpace...)
	if s.via.end > s.via.start {
		dst = append(dst, s.bytes(s.via)...)
		dst = append(dst, commaSpace...)
	}
	if h.IsHTTP11() {
		dst = append(dst, "1.1 cellgate\r\n"...)
	} else {
		dst = append(dst, "1.0 cellgate\r\n"...)
	}
	dst = appendFlagsField(dst, in.flags)
	if in.tunnel {
		dst = append(dst, "Upgrade: websocket\r\nConnection: Upgrade\r\n"...)
	}
	if in.chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	dst = in.trace.appendTrace(dst)
	return append(dst, crlf...)
}

// appendForwardedElement appends one RFC 7239 forwarded-element:
// for=…;proto=…[;host=…]. Values that are not tokens are quoted (§4, §6):
// an IPv6 address is always "[…]"; a host with a port has a colon. text
// is peer as text.
func appendForwardedElement(dst []byte, peer netip.Addr, text, proto, host []byte) []byte {
	dst = append(dst, "for="...)
	switch {
	case !peer.IsValid():
		dst = append(dst, "unknown"...) // §6.3
	case peer.Is6():
		dst = append(dst, `"[`...)
		dst = append(dst, text...)
		dst = append(dst, `]"`...)
	default:
		dst = append(dst, text...)
	}
	dst = append(dst, ";proto="...)
	dst = append(dst, proto...)
	if len(host) > 0 {
		dst = append(dst, ";host="...)
		dst = appendTokenOrQuoted(dst, host)
	}
	return dst
}

// appendTokenOrQuoted appends v as an RFC 9110 token when it is one, and as
// a quoted-string (with '"' and '\' escaped) otherwise.
func appendTokenOrQuoted(dst, v []byte) []byte {
	token := len(v) > 0
	for _, c := range v {
		if !isTokenChar(c) {
			token = false
			break
		}
	}
	if token {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2). A table:
// every byte of the Forwarded host goes through it per request.
func isTokenChar(c byte) bool { return tchars[c] }

var tchars = func() (t [256]bool) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] = true
		default:
			t[c] = strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		}
	}
	return t
}()

// appendField appends "name: value\r\n".
func appendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, colonSpace...)
	dst = append(dst, value...)
	return append(dst, crlf...)
}

// equalFold is bytes.EqualFold for byte slices of one length, with the
// ASCII compare inline (names are ASCII tokens; it runs for several field
// names of every request): at the first byte pair that differs in ASCII
// case folding, a non-ASCII byte leaves the answer to bytes.EqualFold.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if x, y := a[i], b[i]; x != y && lowerASCII[x] != lowerASCII[y] {
			if x >= 0x80 || y >= 0x80 {
				return bytes.EqualFold(a, b) // whole: i may be inside a rune
			}
			return false
		}
	}
	return true
}

// lowerASCII maps A–Z to a–z and every other byte to itself.
var lowerASCII = func() (t [256]byte) {
	for c := range 256 {
		t[c] = byte(c)
		if 'A' <= c && c <= 'Z' {
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	return t
}()
