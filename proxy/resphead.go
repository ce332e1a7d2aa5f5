package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/valyala/fasthttp"
)

// headFraming is what peekHead learned from an upstream response head's raw
// bytes, beyond what fasthttp's parsed header keeps.
type headFraming uint8

const (
	headContentLength headFraming = 1 << iota // a Content-Length field
	headChunked                               // a Transfer-Encoding field
	headBothLengths                           // both: RFC 9112 §6.3 — close after this response
	headHTTP10                                // the status line says HTTP/1.0
)

var (
	hdrContentLength = []byte("Content-Length")
	prefixHTTP10     = []byte("HTTP/1.0 ")
)

// peekHead waits until br holds a whole response head and scans its raw
// bytes without consuming them; fasthttp's parser then reads the same
// bytes. It returns them too (raw, valid until br is read), from which the
// client's head is written (respwrite.go). fasthttp's parsed header forgets a Content-Length that a
// Transfer-Encoding overrode, which is exactly the case that must close
// the upstream connection. A head too large for br is left to the parser
// to refuse.
func peekHead(br *bufio.Reader) (headFraming, []byte, error) {
	from := 0
	for n := 1; ; n = br.Buffered() + 1 {
		b, err := br.Peek(n)
		if err == nil && br.Buffered() > len(b) {
			b, _ = br.Peek(br.Buffered()) // the fill brought more than asked
		}
		if end := headEnd(b, from); end >= 0 {
			return scanHead(b[:end]), b[:end], nil
		}
		from = max(0, len(b)-3)
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				return 0, nil, nil
			case len(b) == 0 && !isTimeout(err):
				// Nothing arrived: a connection closed or reset before
				// the first byte reads as io.EOF, as fasthttp's own
				// parser reports it, which is what roundTrip's stale
				// rule (a pooled connection the upstream had dropped)
				// looks for.
				return 0, nil, io.EOF
			}
			return 0, nil, err
		}
	}
}

// headEnd returns the length of the head in b (through its empty line),
// searching from offset from, or -1 when b holds no complete head. A bare
// LF ends lines too, as fasthttp's parser accepts it.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

// scanHead reports the framing fields of a complete head.
func scanHead(head []byte) headFraming {
	var f headFraming
	if bytes.HasPrefix(head, prefixHTTP10) {
		f |= headHTTP10
	}
	i := bytes.IndexByte(head, '\n')
	if i < 0 {
		return f
	}
	for rest := head[i+1:]; len(rest) > 0; {
		var k []byte
		k, _, _, rest = nextField(rest)
		switch {
		case equalFold(k, hdrContentLength):
			f |= headContentLength
		case equalFold(k, hdrTE):
			f |= headChunked
		}
	}
	if f&(headContentLength|headChunked) == headContentLength|headChunked {
		f |= headBothLengths
	}
	return f
}

var headEndCRLF = []byte("\r\n\r\n")

// readHeadInto parses the response head peekHead found (raw) from br into
// h and consumes it. fasthttp's response parser takes bare LF line ends
// (RFC 9112 §2.2 lets a recipient) but waits for a CRLF empty line: a head
// that ends in a bare LF would stall until the upstream read timeout, so
// such a head, rare and never on the fast path, is parsed from a copy with
// CRLF line ends instead.
func readHeadInto(h *fasthttp.ResponseHeader, br *bufio.Reader, raw []byte) error {
	if raw == nil || bytes.HasSuffix(raw, headEndCRLF) {
		return h.Read(br)
	}
	fixed := make([]byte, 0, len(raw)+bytes.Count(raw, []byte("\n")))
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			fixed = append(fixed, '\r')
		}
		fixed = append(fixed, c)
	}
	if err := h.Read(bufio.NewReader(bytes.NewReader(fixed))); err != nil {
		return err
	}
	_, err := br.Discard(len(raw))
	return err
}
