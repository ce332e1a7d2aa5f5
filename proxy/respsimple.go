package proxy

import "bytes"

// A simple upstream response head is decided in one pass over its bytes on
// the loop core (loopresp.go): the common HTTP/1.1 answer, with a
// Content-Length or chunked, and nothing about it that fasthttp's parser,
// the hygiene of prepareResponse or the server's framing would treat
// specially. For it, the general path — fasthttp's ResponseHeader.Read of
// the same bytes, then AppendBytes only to read back the framing
// fasthttp's server would write (headswap.go's readFraming) — comes to a
// foregone answer: the upstream's length or chunking passed on, its
// framing line kept in place, the upstream connection kept, and
// "Connection: close" only when cellgate closes the client's connection. buildSimple writes the client's head and
// that answer, or declines, and the general path runs as before; both must
// send the same bytes and decide the same (FuzzResponseHeadBuild compares
// them on arbitrary heads).
//
// A head is simple when, byte by byte:
//   - the status line is "HTTP/1.1 DDD reason\r\n", DDD 200–599 but not
//     204 or 304 (no interim, no switch, no bodiless status), the reason
//     phrase HTAB, SP, VCHAR or obs-text (validStatusLine's rule);
//   - every field line is "name:value\r\n", the name a token right
//     before the colon, the value HTAB, SP, VCHAR or obs-text (so no
//     obs-fold, no bare CR or LF, nothing fasthttp's scanner flags);
//   - exactly one framing field: a Content-Length, SP/HT around one to
//     eighteen digits without a leading zero (so the upstream's bytes are
//     the ones fasthttp writes back), or a Transfer-Encoding of exactly
//     "chunked" (any case, SP/HT around);
//   - no other hop-by-hop field (hopByHop: Connection, Keep-Alive, …),
//     no Trailer (fasthttp parses it) and no X-Cellgate-Exposed (it feeds
//     the flags: prepareResponse reads it);
//   - the head fits the buffer fasthttp's parser would read it through.
//
// The caller adds what the head cannot show: not a HEAD request, and no
// sticky or pin cookie to set (label's cookies are written by fasthttp).

// tokenTable marks the RFC 9110 token characters (isTokenChar) for the
// byte-at-a-time scan. Never written after its initialisation.
var tokenTable = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isTokenChar(byte(c))
	}
	return t
}()

// maxSimpleCL bounds a simple Content-Length's digits: the value fits an
// int64 (and, checked apart, the int fasthttp parses it into).
const maxSimpleCL = 18

// simpleField is what buildSimple does with a field line.
type simpleField uint8

const (
	fieldCopy    simpleField = iota // passed as it is
	fieldLength                     // Content-Length
	fieldChunked                    // Transfer-Encoding
	fieldDrop                       // the upstream's X-Cellgate-Cell/Version when cellgate writes its own
	fieldComplex                    // the head is not simple
)

// simpleHead decides raw the simple way when it can: not for a HEAD request
// (isHead: fasthttp's parsed length is kept) nor when label sets a cookie
// (cookies: it is written by fasthttp), and only for a simple head
// (buildSimple, whose arguments dropOwn and maxHead are). When it reports
// true, r holds the client's head so far and the plan is planParsed's.
func (r *respHead) simpleHead(raw []byte, isHead, cookies, dropOwn bool, maxHead int) (headPlan, bool) {
	if isHead || cookies {
		return headPlan{}, false
	}
	sc, cl, ok := r.buildSimple(raw, dropOwn, maxHead)
	if !ok {
		return headPlan{}, false
	}
	if cl == -1 {
		return headPlan{status: sc, cl: -1, mode: relayChunked}, true
	}
	return headPlan{status: sc, cl: int(cl), mode: relayLength, left: cl}, true
}

// simpleFraming is scanHead's answer for a simple head decided as p.
func simpleFraming(p *headPlan) headFraming {
	if p.mode == relayChunked {
		return headChunked
	}
	return headContentLength
}

// buildSimple writes the client's head for raw (the upstream's final head,
// status line through the empty line) into r, as build does, when raw is
// simple (see above) and no longer than maxHead, and returns its status
// code and Content-Length (-1: chunked). Otherwise it reports false and r
// is to be built by build. dropOwn drops the upstream's X-Cellgate-Cell and
// X-Cellgate-Version (build's rule).
func (r *respHead) buildSimple(raw []byte, dropOwn bool, maxHead int) (sc int, cl int64, ok bool) {
	r.reset()
	if len(raw) > maxHead || len(raw) < 17 || string(raw[:9]) != "HTTP/1.1 " || raw[12] != ' ' {
		return 0, 0, false
	}
	for _, c := range raw[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		sc = sc*10 + int(c-'0')
	}
	if sc < 200 || sc > 599 || sc == 204 || sc == 304 {
		return 0, 0, false
	}
	i := 13
	for ; i < len(raw) && raw[i] != '\r'; i++ {
		if !valueByte(raw[i]) {
			return 0, 0, false
		}
	}
	if i+1 >= len(raw) || raw[i+1] != '\n' {
		return 0, 0, false
	}
	r.buf = append(r.buf, raw[:i+2]...)
	cl = -2 // no framing field yet
	for rest := raw[i+2:]; ; {
		if len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n' {
			if len(rest) != 2 || cl == -2 {
				r.reset()
				return 0, 0, false
			}
			return sc, cl, true
		}
		n := 0
		for n < len(rest) && tokenTable[rest[n]] {
			n++
		}
		if n == 0 || n == len(rest) || rest[n] != ':' {
			r.reset()
			return 0, 0, false
		}
		e := n + 1
		for e < len(rest) && rest[e] != '\r' {
			if !valueByte(rest[e]) {
				r.reset()
				return 0, 0, false
			}
			e++
		}
		if e+1 >= len(rest) || rest[e+1] != '\n' {
			r.reset()
			return 0, 0, false
		}
		name, line := rest[:n], rest[:e+2]
		rest = rest[e+2:]
		switch classifySimple(name, dropOwn) {
		case fieldCopy:
			r.buf = append(r.buf, line...)
		case fieldLength:
			v, ok := simpleLength(line[n+1 : e])
			if !ok || cl != -2 {
				r.reset()
				return 0, 0, false
			}
			cl = v
			start := len(r.buf)
			r.buf = append(r.buf, line...)
			r.cl = span{start, len(r.buf)}
			off := start + n + 1
			for r.buf[off] == ' ' || r.buf[off] == '\t' {
				off++
			}
			end := off
			for end < len(r.buf) && r.buf[end] >= '0' && r.buf[end] <= '9' {
				end++
			}
			r.clv = span{off, end}
		case fieldChunked:
			if cl != -2 || !equalFold(bytes.Trim(line[n+1:e], " \t"), tokChunked) {
				r.reset()
				return 0, 0, false
			}
			cl = -1
			start := len(r.buf)
			r.buf = append(r.buf, line...)
			r.te = span{start, len(r.buf)}
		case fieldDrop:
		default:
			r.reset()
			return 0, 0, false
		}
	}
}

// valueByte reports whether c may appear in a simple field value or reason
// phrase: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
func valueByte(c byte) bool { return c >= ' ' && c != 0x7f || c == '\t' }

// simpleLength parses a simple Content-Length value (SP/HT, digits, SP/HT).
func simpleLength(v []byte) (int64, bool) {
	v = bytes.Trim(v, " \t")
	if len(v) == 0 || len(v) > maxSimpleCL || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, int64(int(n)) == n // fasthttp's int, on a 32-bit platform too
}

// classifySimple says what a simple head does with a field named name.
// Names of other lengths than those below are copied without a compare.
func classifySimple(name []byte, dropOwn bool) simpleField {
	switch len(name) {
	case 17:
		if equalFold(name, hdrTE) {
			return fieldChunked
		}
	case 2, 7, 10, 16, 19: // TE; Upgrade, Trailer; Connection, Keep-Alive; Proxy-Connection; Proxy-Authorization
		if namedIn(name, hopByHop) || equalFold(name, hdrTrailer) {
			return fieldComplex
		}
	case 14:
		if equalFold(name, hdrContentLengthB) {
			return fieldLength
		}
	case 15, 18: // X-Cellgate-Cell; X-Cellgate-Version, X-Cellgate-Exposed, Proxy-Authenticate
		switch {
		case equalFold(name, hdrExposed), namedIn(name, hopByHop):
			return fieldComplex
		case dropOwn && (equalFold(name, hdrCell) || equalFold(name, hdrVersion)):
			return fieldDrop
		}
	}
	return fieldCopy
}

// appendSimple appends r's head (built by buildSimple, cellgate's own
// fields appended) to dst as appendFinal does with the framing fasthttp's
// server writes for it: the upstream's Content-Length or chunking, and
// Connection: close when the client's connection closes after the response.
func (r *respHead) appendSimple(dst []byte, closing bool) []byte {
	f := framing{chunked: r.te.end > 0}
	if r.cl.end > 0 {
		f.cl = r.buf[r.clv.start:r.clv.end]
	}
	if closing {
		f.conn[0] = connCloseLine
	}
	return r.appendFinal(dst, &f)
}
