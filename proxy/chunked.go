package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fasthttp"
)

// Chunked upstream bodies (RFC 9112 §7.1), read the same way by both server
// cores: the goroutine core through chunkReader, the loop core through its
// relay (loopresp.go's dechunk). Both read a chunk-size line with
// chunkSizeLine, so an upstream body one core relays the other does not
// cut. fasthttp's own decoder is not used for it: it refuses whitespace
// before a chunk extension's ';' ("3 ; name = v"), which RFC 9112 allows
// (BWS) and HAProxy and nginx accept; its decoder cannot be told otherwise.
// The trailer section is still fasthttp's to read (ReadTrailer), so the
// trailer fields reach the client as before.

// maxChunkLine bounds a chunk-size or trailer line.
const maxChunkLine = 4 << 10

// maxChunkSizeDigits is fasthttp's bound on a chunk size's hex digits
// (maxHexIntChars, 64-bit).
const maxChunkSizeDigits = 15

// chunkSizeLine reads a chunk-size line (through its LF): 1 to 15 hex
// digits, optional whitespace, an optional extension (";…", dropped; the
// whitespace before its ';' and inside it is RFC 9112's BWS) with no CR
// but the last, and CRLF. Everything else fasthttp's decoder refuses is
// refused too (FuzzChunkSizeLine): a bare LF, a CR inside the line, other
// bytes after the size, 16 digits or more.
func chunkSizeLine(line []byte) (int64, bool) {
	if !bytes.HasSuffix(line, crlf) {
		return 0, false
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line); i++ {
		k := unhex(line[i])
		if k < 0 {
			break
		}
		if i == maxChunkSizeDigits {
			return 0, false
		}
		n = n<<4 | int64(k)
	}
	if i == 0 {
		return 0, false
	}
	for _, c := range line[i:] {
		switch c {
		case ' ', '\t':
		case ';':
			// An extension: the rest of the line goes with it, up to a CR
			// that must be the line's end.
			return n, bytes.IndexByte(line[i:], '\r') < 0
		default:
			return 0, false
		}
	}
	return n, true
}

// unhex is a hex digit's value, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

var (
	errChunkLineTooLong = errors.New("upstream body: chunk line too long")
	errChunkDataEnd     = errors.New("upstream body: chunk data not followed by CRLF")
)

// chunkReader decodes a chunked body from the upstream connection's reader
// for the goroutine core, as fasthttp's body stream does (its requestStream)
// but with chunkSizeLine's rules: the payload, then io.EOF once the last
// chunk and the trailer section (read into hdr) are in; a body cut short
// is io.ErrUnexpectedEOF. It lives in reqState: no allocation.
type chunkReader struct {
	br   *bufio.Reader
	hdr  *fasthttp.ResponseHeader // receives the trailer fields
	left int64                    // bytes of the current chunk still to read
	eof  bool
	line []byte // the chunk-size line being read
}

// reset starts a body on br whose trailer fields go to hdr.
func (r *chunkReader) reset(br *bufio.Reader, hdr *fasthttp.ResponseHeader) {
	r.br, r.hdr, r.left, r.eof, r.line = br, hdr, 0, false, r.line[:0]
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	if r.left == 0 {
		size, err := r.sizeLine()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := r.hdr.ReadTrailer(r.br); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, fmt.Errorf("upstream body: trailer section: %w", err)
			}
			r.eof = true
			return 0, io.EOF
		}
		r.left = size
	}
	n, err := r.br.Read(p[:min(int64(len(p)), r.left)])
	r.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && r.left == 0 {
		err = readCRLF(r.br)
	}
	return n, err
}

// sizeLine reads the next chunk-size line and returns its size.
func (r *chunkReader) sizeLine() (int64, error) {
	r.line = r.line[:0]
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("upstream body: chunk size: %w", err)
		}
		r.line = append(r.line, c)
		if c == '\n' {
			break
		}
		if len(r.line) > maxChunkLine {
			return 0, errChunkLineTooLong
		}
	}
	size, ok := chunkSizeLine(r.line)
	if !ok {
		return 0, fmt.Errorf("upstream body: bad chunk size line %q", r.line)
	}
	return size, nil
}

// readCRLF reads the CRLF that ends a chunk's data.
func readCRLF(br *bufio.Reader) error {
	for _, want := range crlf {
		c, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("upstream body: %w", err)
		}
		if c != want {
			return errChunkDataEnd
		}
	}
	return nil
}
