package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/cellgate/cellgate/internal/ows"
)

// The response parser reads only what the generator reports: the status,
// the two cellgate headers, and the framing headers it needs to find the
// end of the body (RFC 9112 §6.3). Everything else is skipped unparsed, and
// bodies are discarded without being copied. It reads lines with
// bufio.Reader.ReadSlice, so a response costs no allocation; a header line
// longer than the reader's buffer is an error rather than a reason to grow.

// Errors of malformed responses. They are fixed values, so a broken target
// shows as a handful of "other: …" causes rather than one per response.
var (
	errMalformed      = errors.New("malformed response")
	errStatusLine     = wrapMalformed("bad status line")
	errHeaderLine     = wrapMalformed("bad header line")
	errHeaderTooLarge = wrapMalformed("header line too long")
	errTooManyHeaders = wrapMalformed("too many header lines")
	errContentLength  = wrapMalformed("bad Content-Length")
	errChunk          = wrapMalformed("bad chunk")
	errInterim        = wrapMalformed("too many interim (1xx) responses")
	errUpgrade        = wrapMalformed("unexpected 101 Switching Protocols")
)

// errConnClosed says the connection ended cleanly before the first byte of
// a response: the server closed it, typically an idle keep-alive connection
// (RFC 9112 §9.3.1). It maps to CauseClosed.
var errConnClosed = errors.New("connection closed before the first response byte")

type malformedError struct{ what string }

func (e *malformedError) Error() string { return errMalformed.Error() + ": " + e.what }
func (e *malformedError) Unwrap() error { return errMalformed }

func wrapMalformed(what string) error { return &malformedError{what: what} }

// Limits that keep a hostile or broken target from holding the parser.
const (
	maxHeaderLines   = 256 // per response, trailers included
	maxInterim       = 8   // 1xx responses before the final one
	maxContentLength = 1 << 50
)

// h1Response is what the generator keeps of one response. The slices are
// reused from response to response.
type h1Response struct {
	status int
	cell   []byte // X-Cellgate-Cell, empty when absent
	cgErr  []byte // X-Cellgate-Error, empty when absent
	close  bool   // the connection must not carry another request
}

// h1Framing is the body framing announced by the header.
type h1Framing struct {
	contentLength int64 // -1 when absent
	chunked       bool
	otherCoding   bool // a Transfer-Encoding whose last coding is not chunked
	keepAlive     bool // Connection: keep-alive (matters for HTTP/1.0)
}

// readResponse reads one response from br into resp and discards its body;
// headOnly says the request was HEAD, whose response has no body whatever
// its header says (RFC 9110 §9.3.2). started reports whether any byte of a
// response arrived, which tells a stale keep-alive connection from a
// failure in the middle of a response. A clean end of the stream before the
// first byte is errConnClosed, one later io.ErrUnexpectedEOF.
func readResponse(br *bufio.Reader, resp *h1Response, headOnly bool) (started bool, err error) {
	for range maxInterim + 1 {
		var f h1Framing
		var http10 bool
		started, http10, f, err = readHead(br, resp, started)
		if err != nil {
			return started, err
		}
		if resp.status == 101 {
			return true, errUpgrade
		}
		if resp.status < 200 {
			continue // interim response (RFC 9110 §15.2): the final one follows
		}
		resp.close = resp.close || (http10 && !f.keepAlive)
		if headOnly || resp.status == 204 || resp.status == 304 {
			return true, nil
		}
		return true, discardBody(br, resp, f)
	}
	return started, errInterim
}

// readHead reads a status line and the header fields up to the empty line.
func readHead(br *bufio.Reader, resp *h1Response, started bool) (bool, bool, h1Framing, error) {
	f := h1Framing{contentLength: -1}
	resp.status, resp.close = 0, false
	resp.cell, resp.cgErr = resp.cell[:0], resp.cgErr[:0]
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && !started && errors.Is(err, io.EOF) {
			return false, false, f, errConnClosed
		}
		return started || len(line) > 0, false, f, lineErr(err)
	}
	status, http10, ok := parseStatusLine(trimEOL(line))
	if !ok {
		return true, false, f, errStatusLine
	}
	resp.status = status
	for range maxHeaderLines {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return true, http10, f, lineErr(err)
		}
		line = trimEOL(line)
		if len(line) == 0 {
			return true, http10, f, nil
		}
		if err := headerField(line, resp, &f); err != nil {
			return true, http10, f, err
		}
	}
	return true, http10, f, errTooManyHeaders
}

// parseStatusLine parses "HTTP/1.x NNN reason" (RFC 9112 §4).
func parseStatusLine(line []byte) (status int, http10, ok bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false, false
	}
	switch line[7] {
	case '0':
		http10 = true
	case '1':
	default:
		return 0, false, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		status = status*10 + int(c-'0')
	}
	return status, http10, status >= 100
}

// headerField handles one field line: it records the headers the generator
// needs and ignores the rest.
func headerField(line []byte, resp *h1Response, f *h1Framing) error {
	if line[0] == ' ' || line[0] == '\t' {
		return nil // obs-fold continuation (RFC 9112 §5.2) of a field we skip
	}
	colon := -1
	for i, c := range line {
		if c == ':' {
			colon = i
			break
		}
		if c == ' ' || c == '\t' {
			return errHeaderLine // no whitespace before the colon (RFC 9112 §5.1)
		}
	}
	if colon <= 0 {
		return errHeaderLine
	}
	name, value := line[:colon], ows.Trim(line[colon+1:])
	switch len(name) {
	case len("Content-Length"):
		if equalFoldLower(name, "content-length") {
			return contentLength(value, f)
		}
	case len("Transfer-Encoding"):
		if equalFoldLower(name, "transfer-encoding") {
			f.chunked = equalFoldLower(lastToken(value), "chunked")
			f.otherCoding = !f.chunked
		}
	case len("Connection"):
		if equalFoldLower(name, "connection") {
			connectionTokens(value, resp, f)
		}
	case len(HeaderCell):
		if equalFoldLower(name, "x-cellgate-cell") {
			resp.cell = append(resp.cell[:0], value...)
		}
	case len(HeaderError):
		if equalFoldLower(name, "x-cellgate-error") {
			resp.cgErr = append(resp.cgErr[:0], value...)
		}
	}
	return nil
}

// contentLength parses a Content-Length value; repeated fields must agree
// (RFC 9112 §6.3, item 5).
func contentLength(value []byte, f *h1Framing) error {
	if len(value) == 0 {
		return errContentLength
	}
	var n int64
	for _, c := range value {
		if c < '0' || c > '9' {
			return errContentLength
		}
		n = n*10 + int64(c-'0')
		if n > maxContentLength {
			return errContentLength
		}
	}
	if f.contentLength >= 0 && f.contentLength != n {
		return errContentLength
	}
	f.contentLength = n
	return nil
}

// connectionTokens reads the close and keep-alive options of a Connection
// field (RFC 9112 §9.3, §9.6).
func connectionTokens(value []byte, resp *h1Response, f *h1Framing) {
	for len(value) > 0 {
		tok := value
		if i := bytes.IndexByte(value, ','); i >= 0 {
			tok, value = value[:i], value[i+1:]
		} else {
			value = nil
		}
		tok = ows.Trim(tok)
		switch {
		case equalFoldLower(tok, "close"):
			resp.close = true
		case equalFoldLower(tok, "keep-alive"):
			f.keepAlive = true
		}
	}
}

// discardBody skips the body as framed by f (RFC 9112 §6.3): chunked wins
// over Content-Length; without either the body runs to the end of the
// connection, which then cannot be reused.
func discardBody(br *bufio.Reader, resp *h1Response, f h1Framing) error {
	switch {
	case f.chunked:
		return discardChunked(br)
	case f.otherCoding || f.contentLength < 0:
		resp.close = true
		_, err := io.Copy(io.Discard, br)
		return err
	default:
		_, err := br.Discard(int(f.contentLength))
		return unexpectedEOF(err)
	}
}

// discardChunked skips a chunked body and its trailer section
// (RFC 9112 §7.1).
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return lineErr(err)
		}
		size, ok := chunkSize(trimEOL(line))
		if !ok {
			return errChunk
		}
		if size == 0 {
			return discardTrailers(br)
		}
		if _, err := br.Discard(int(size)); err != nil {
			return unexpectedEOF(err)
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return lineErr(err)
		}
		if len(trimEOL(line)) != 0 {
			return errChunk // chunk data must end with CRLF
		}
	}
}

// discardTrailers reads trailer field lines up to the empty line.
func discardTrailers(br *bufio.Reader) error {
	for range maxHeaderLines {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return lineErr(err)
		}
		if len(trimEOL(line)) == 0 {
			return nil
		}
	}
	return errTooManyHeaders
}

// chunkSize parses the hex size of a chunk line, ignoring extensions.
func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			return n, digits > 0 // chunk-ext (RFC 9112 §7.1.1) and BWS follow
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
		digits++
		if n > maxContentLength {
			return 0, false
		}
	}
	return n, digits > 0
}

// lineErr turns a ReadSlice error in the middle of a response into the
// error to report.
func lineErr(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return errHeaderTooLarge
	}
	return unexpectedEOF(err)
}

// unexpectedEOF reports an end of stream inside a response as such.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// trimEOL strips the line's LF and an optional CR before it.
func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// lastToken returns the last element of a comma-separated list.
func lastToken(b []byte) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return ows.Trim(b[i+1:])
		}
	}
	return ows.Trim(b)
}

// equalFoldLower compares b case-insensitively with lower, which is
// lower-case ASCII.
func equalFoldLower(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
