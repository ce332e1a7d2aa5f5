//go:build linux

package proxy

import (
	"bytes"
	"io"
	"net/http/httputil"
	"testing"
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
