package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzChunkSizeLine: both cores read a chunk-size line as fasthttp's
// decoder does — the same lines refused, the same sizes read — except
// whitespace before an extension's ';' (RFC 9112's BWS), which fasthttp
// refuses and chunkSizeLine accepts: such a line reads as fasthttp reads
// it without that whitespace.
func FuzzChunkSizeLine(f *testing.F) {
	for _, s := range []string{"3\r\n", "3 ; name = v\r\n", "3;ext\r\n", "3 \r\n", "03\r\n", "x\r\n", "3\n", "3;a\rb\r\n", "fffffffffffffff\r\n", "1000000000000000\r\n", "\r\n", "3\t;x\r\n", "3 ;\r\n", "3 x;\r\n", "3 ; a\rb\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			return // a line is read through its LF
		}
		line = line[:i+1]
		size, ok := chunkSizeLine(line)
		if ok && size >= 1<<16 {
			return // a body too big to build here
		}
		canon := withoutBWS(line)
		src := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(canon)
		switch {
		case ok && size == 0:
			src += "\r\n" // the last chunk: an empty trailer section
		case ok:
			src += strings.Repeat("a", int(size)) + "\r\n0\r\n\r\n"
		default:
			src += "0\r\n\r\n"
		}
		// Streamed, as fasthttp's body stream reads it: a huge size it
		// accepts is not allocated, it runs out of bytes.
		var resp fasthttp.Response
		resp.StreamBody = true
		err := resp.Read(bufio.NewReader(strings.NewReader(src)))
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.BodyStream())
		}
		if (err == nil) != ok {
			t.Fatalf("line %q (fasthttp given %q): chunkSizeLine ok=%v size %d, fasthttp err %v", line, canon, ok, size, err)
		}
		if ok && int64(len(body)) != size {
			t.Fatalf("line %q: chunkSizeLine size %d, fasthttp read %d bytes", line, size, len(body))
		}
	})
}

// withoutBWS is line without the spaces and tabs between its size digits
// and an extension's ';'.
func withoutBWS(line []byte) []byte {
	i := 0
	for i < len(line) && unhex(line[i]) >= 0 {
		i++
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if i == 0 || j == i || j == len(line) || line[j] != ';' {
		return line
	}
	return append(append([]byte(nil), line[:i]...), line[j:]...)
}

// FuzzChunkReader: the goroutine core's chunked decoder (chunkReader)
// never panics, and a body it reads whole carries the payload net/http's
// decoder reads from the same bytes.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("3 ; ext = 1\r\nabc\r\n2\t;x\r\nde\r\n0 ; end\r\nX-T: 1\r\n\r\n"))
	f.Add([]byte("A\r\n0123456789\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"))
	f.Add([]byte("zz\r\n"))
	f.Add([]byte("1\r\nab\r\n0\r\n\r\n"))
	f.Add([]byte("3\r\nabc"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		var hdr fasthttp.ResponseHeader
		var r chunkReader
		r.reset(br, &hdr)
		got, err := io.ReadAll(&r)
		if err != nil {
			return // refused or cut: the client connection is reset (truncated)
		}
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if werr != nil {
			return // net/http reads it differently (stricter about sizes and extensions)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunkReader read %q, net/http %q from %q", got, want, in)
		}
	})
}
