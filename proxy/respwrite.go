package proxy

import (
	"bytes"
)

// The client's response head is written from the upstream's own bytes, not
// re-serialised from fasthttp's parsed header: fasthttp keeps
// Content-Type, Content-Encoding, Content-Length, Server and Set-Cookie in
// fields of their own and writes them in its own order (Content-* first,
// Set-Cookie last), keeps only the last of two Content-Type or Server
// fields, and trims the space around every value. RFC 9110 §5.3 lets the
// order of fields with different names carry no meaning, but nothing lets
// a proxy rely on that for the upstream's clients (and Set-Cookie order
// does matter to browsers when names repeat).
//
// What changes, and nothing else (README "What cellgate changes"):
//   - the status line's version becomes HTTP/1.1 (what cellgate speaks to
//     its clients); status code and reason phrase pass as sent;
//   - hop-by-hop fields go (RFC 9110 §7.6.1), with every field named in
//     Connection; X-Cellgate-Cell and X-Cellgate-Version go when cellgate
//     writes its own; X-Cellgate-Exposed always goes (proxy/flags.go);
//   - framing is cellgate's (see appendFinal): the upstream's
//     Content-Length or "Transfer-Encoding: chunked" line stays where it
//     was when cellgate frames the body the same way, and otherwise gives
//     way to cellgate's framing after the last field, beside Connection;
//   - obs-fold is replaced by spaces (RFC 9112 §5.2), whitespace between a
//     field name and its colon is removed (RFC 9112 §5.1), lines end in
//     CRLF, and a field whose name is not a token is dropped;
//   - cellgate's own fields (Via, X-Cellgate-*, its cookies) follow the
//     upstream's.
//
// Beside HAProxy 2.6 (mode http, the shared bench config), same raw
// upstream answers: both keep field order and repeats, the reason phrase,
// a missing reason's space, obs-fold as spaces and a chunked line in
// place, and drop Content-Length beside chunked; HAProxy lowercases every
// name, trims value spacing, passes fields that Connection names, and
// answers 502 to whitespace before a colon.

var (
	hdrContentLengthB = []byte("Content-Length")
	tokChunked        = []byte("chunked")
	httpVersion11     = []byte("HTTP/1.1")
	hdrSetCookie      = []byte("Set-Cookie")
)

// respHead is a client response head under construction: the status line
// and fields, without the empty line, and where in it the upstream's
// framing lines are, so appendFinal can keep or drop them.
type respHead struct {
	buf []byte
	cl  span // the upstream's Content-Length line (empty: none)
	clv span // its value
	te  span // the upstream's Transfer-Encoding line, when it was exactly chunked
}

func (r *respHead) reset() { r.buf, r.cl, r.clv, r.te = r.buf[:0], span{}, span{}, span{} }

// build writes the upstream head raw (status line through the empty line,
// as peekHead found it) into r with the changes above. s is scratch for
// the Connection tokens; dropOwn drops the upstream's X-Cellgate-* fields.
func (r *respHead) build(raw []byte, s *scrub, dropOwn bool) {
	r.reset()
	if len(raw) == 0 {
		return // peekHead did not see the head whole: the server's head goes
	}
	s.reset()
	line, fields := raw, []byte(nil)
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line, fields = raw[:i+1], raw[i+1:]
	}
	if !validStatusLine(line) {
		return // the server's head goes, from its sanitised parse
	}
	r.buf = appendStatusLine(r.buf, line)
	for rest := fields; len(rest) > 0; {
		name, lines, _, next := nextRespField(rest)
		rest = next
		if equalFold(name, hdrConnection) {
			s.noteConnectionTokens(fieldValue(lines))
		}
	}
	for rest := fields; len(rest) > 0; {
		name, lines, folded, next := nextRespField(rest)
		rest = next
		switch {
		case !isToken(name):
		case equalFold(name, hdrTE):
			if v := fieldValue(lines); equalFold(v, tokChunked) {
				r.te = r.appendLine(name, lines, folded)
			}
		case namedIn(name, hopByHop), s.isConnToken(name):
		case equalFold(name, hdrExposed): // read for flags (scrub.visit), never passed on
		case dropOwn && (equalFold(name, hdrCell) || equalFold(name, hdrVersion)):
		case equalFold(name, hdrContentLengthB):
			r.cl = r.appendLine(name, lines, folded)
			line := r.buf[r.cl.start:r.cl.end]
			v := bytes.TrimSpace(line[len(name)+1:])
			off := r.cl.start + bytes.Index(line, v)
			r.clv = span{off, off + len(v)}
		default:
			r.appendLine(name, lines, folded)
		}
	}
}

// validStatusLine reports whether line (with its line end) is an HTTP/1.0
// or HTTP/1.1 status line: three digits, then nothing or a space and a
// reason phrase of HTAB, SP, VCHAR and obs-text (RFC 9112 §4). Anything
// else the parser let through is not copied.
func validStatusLine(line []byte) bool {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) < 12 || !(bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || bytes.HasPrefix(line, prefixHTTP10)) {
		return false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false
		}
	}
	if line[9] == '0' || (len(line) > 12 && line[12] != ' ') {
		return false
	}
	for _, c := range line[12:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendStatusLine appends line (the upstream's status line) with its
// version replaced by HTTP/1.1 and its line end by CRLF. A status line
// without a reason phrase gets the space the grammar requires before it
// (RFC 9112 §4).
func appendStatusLine(dst, line []byte) []byte {
	line = bytes.TrimRight(line, "\r\n")
	rest := line
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		rest = line[i:]
	}
	dst = append(dst, httpVersion11...)
	dst = append(dst, rest...)
	if bytes.Count(rest, []byte{' '}) < 2 {
		dst = append(dst, ' ')
	}
	return append(dst, crlf...)
}

// nextRespField splits the first field off raw: its name (whitespace
// before the colon trimmed), its line with any obs-fold continuation lines
// (RFC 9112 §5.2), and whether it had any. The empty line that ends a head
// and lines without a colon come back with an empty name.
func nextRespField(raw []byte) (name, lines []byte, folded bool, rest []byte) {
	end := 0
	for {
		i := bytes.IndexByte(raw[end:], '\n')
		if i < 0 {
			end = len(raw)
			break
		}
		end += i + 1
		if end < len(raw) && (raw[end] == ' ' || raw[end] == '\t') {
			folded = true
			continue
		}
		break
	}
	lines, rest = raw[:end], raw[end:]
	if i := bytes.IndexByte(lines, ':'); i > 0 {
		name = bytes.TrimRight(lines[:i], " \t")
	}
	return name, lines, folded, rest
}

// fieldValue is the value of a single-line field, whitespace trimmed.
func fieldValue(lines []byte) []byte {
	i := bytes.IndexByte(lines, ':')
	return bytes.Trim(lines[i+1:], " \t\r\n")
}

// appendLine appends one field: its name, then the raw bytes from the colon
// on, each CR or LF inside a folded value replaced by a space and the line
// ended with CRLF. It returns the line's span in r.buf.
func (r *respHead) appendLine(name, lines []byte, folded bool) span {
	start := len(r.buf)
	colon := bytes.IndexByte(lines, ':')
	body := bytes.TrimRight(lines[colon:], "\r\n")
	if !folded && colon == len(name) && len(lines) == colon+len(body)+2 && bytes.HasSuffix(lines, crlf) {
		r.buf = append(r.buf, lines...) // the common case: a plain CRLF line
		return span{start, len(r.buf)}
	}
	r.buf = append(r.buf, name...)
	for _, c := range body {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		r.buf = append(r.buf, c)
	}
	r.buf = append(r.buf, crlf...)
	return span{start, len(r.buf)}
}

// isToken reports whether b is a non-empty RFC 9110 token (a field name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

// framing is what the server library decided about a response's framing,
// read back from the head it wrote (headswap.go): its Content-Length value,
// whether it chunks, and its Connection lines — or what cellgate decides
// where it writes a head itself (a close-delimited body, a 101).
type framing struct {
	cl      []byte
	chunked bool
	conn    [2][]byte // whole lines after the framing: "Connection: …\r\n", a 101's "Upgrade: …\r\n"
}

// appendFinal appends r's head to dst with the framing f and the empty
// line. The upstream's Content-Length line stays in place when f sends the
// same length, its "Transfer-Encoding: chunked" line when f chunks; either
// is dropped otherwise and f's own framing follows the last field. Never
// both: f comes from a server that writes one or the other.
func (r *respHead) appendFinal(dst []byte, f *framing) []byte {
	keepCL := r.cl.end > 0 && f.cl != nil && bytes.Equal(r.buf[r.clv.start:r.clv.end], f.cl)
	keepTE := r.te.end > 0 && f.chunked
	cut1, cut2 := r.cl, r.te // the lines to drop, in buffer order
	if keepCL {
		cut1 = span{}
	}
	if keepTE {
		cut2 = span{}
	}
	if cut2.start < cut1.start {
		cut1, cut2 = cut2, cut1
	}
	dst = append(dst, r.buf[:cut1.start]...)
	dst = append(dst, r.buf[cut1.end:cut2.start]...)
	dst = append(dst, r.buf[cut2.end:]...)
	switch {
	case f.cl != nil && !keepCL:
		dst = appendField(dst, hdrContentLengthB, f.cl)
	case f.chunked && !keepTE:
		dst = appendField(dst, hdrTE, tokChunked)
	}
	for _, c := range f.conn {
		dst = append(dst, c...)
	}
	return append(dst, crlf...)
}

// appendOwn appends cellgate's own response fields: Via naming the
// version the upstream answered with (RFC 9110 §7.6.3), then the
// X-Cellgate-* fields when cell is set, then its cookies (whole
// Set-Cookie values; empty: none).
func (r *respHead) appendOwn(http10 bool, cell, version, cookie, pin []byte) {
	if len(r.buf) == 0 {
		return // no head of the upstream's: the server writes its own
	}
	if http10 {
		r.buf = appendField(r.buf, hdrVia, viaSelf10)
	} else {
		r.buf = appendField(r.buf, hdrVia, viaSelf)
	}
	if cell != nil {
		r.buf = appendField(r.buf, hdrCell, cell)
		r.buf = appendField(r.buf, hdrVersion, version)
	}
	if len(cookie) > 0 {
		r.buf = appendField(r.buf, hdrSetCookie, cookie)
	}
	if len(pin) > 0 {
		r.buf = appendField(r.buf, hdrSetCookie, pin)
	}
}
