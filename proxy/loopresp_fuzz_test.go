//go:build linux

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

// FuzzLoopDechunk: the loop core's relay of a chunked upstream body
// (loopresp.go), fed the upstream's bytes split at an arbitrary point,
// never panics, and when it reports the body whole it has sent a
// well-formed chunked body carrying the same payload as net/http's decoder
// reads from the upstream's bytes.
func FuzzLoopDechunk(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3))
	f.Add([]byte("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"), uint16(9))
	f.Add([]byte("A\r\n0123456789\r\n0\r\n\r\nextra"), uint16(0))
	f.Add([]byte("zz\r\n"), uint16(1))
	f.Add([]byte("1\r\nab\r\n0\r\n\r\n"), uint16(2))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		l, c := &loop{}, &lconn{}
		c.rs.mode = relayChunked
		k := int(cut) % (len(in) + 1)
		var out []byte
		done := false
		for _, piece := range [][]byte{in[:k], in[k:]} {
			if done {
				break
			}
			var err error
			out, done, _, err = l.dechunk(c, out, piece)
			if err != nil {
				return // refused: the client connection is reset (truncated)
			}
		}
		if !done {
			return
		}
		want, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if err != nil {
			return // net/http reads it differently (it is stricter about sizes); nothing to compare
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("relayed body is not well-formed chunked coding: %v\nin  %q\nout %q", err, in, out)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("relayed payload %q, upstream's %q\nin  %q\nout %q", got, want, in, out)
		}
	})
}

// FuzzChunkSizeLine: the loop core reads a chunk-size line as the
// goroutine core's decoder (fasthttp) does — the same lines refused, the
// same sizes read — so an upstream body one core relays the other does not
// cut.
func FuzzChunkSizeLine(f *testing.F) {
	for _, s := range []string{"3\r\n", "3 ; name = v\r\n", "3;ext\r\n", "3 \r\n", "03\r\n", "x\r\n", "3\n", "3;a\rb\r\n", "fffffffffffffff\r\n", "1000000000000000\r\n", "\r\n", "3\t;x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			return // the loop reads a line through its LF
		}
		line = line[:i+1]
		size, ok := chunkSizeLine(line)
		if ok && size >= 1<<16 {
			return // a body too big to build here
		}
		src := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(line)
		switch {
		case ok && size == 0:
			src += "\r\n" // the last chunk: an empty trailer section
		case ok:
			src += strings.Repeat("a", int(size)) + "\r\n0\r\n\r\n"
		default:
			src += "0\r\n\r\n"
		}
		// Streamed, as the goroutine core reads it (forward.go): a huge
		// size fasthttp accepts is not allocated, it runs out of bytes.
		var resp fasthttp.Response
		resp.StreamBody = true
		err := resp.Read(bufio.NewReader(strings.NewReader(src)))
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.BodyStream())
		}
		if (err == nil) != ok {
			t.Fatalf("line %q: loop core ok=%v size %d, fasthttp err %v", line, ok, size, err)
		}
		if ok && int64(len(body)) != size {
			t.Fatalf("line %q: loop core size %d, fasthttp read %d bytes", line, size, len(body))
		}
	})
}
