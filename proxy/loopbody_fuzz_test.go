//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzLoopFraming feeds client bytes, in pieces, to the loop's framing
// (loop.frame: the front door's validator, then the decision to serve,
// wait or hand over) as clientEvent and requestDone would, and checks
// every request it serves against fasthttp reading the same bytes: the
// same head and body, a Content-Length body within the loop's bounds
// (loopBodyMax, the read buffer, max_request_body), never more bytes than
// were read. No sockets: frame touches the connection's buffers only.
func FuzzLoopFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"P",
	} {
		f.Add([]byte(s), uint8(7))
	}
	opts := testOptions()
	opts.ReadBufferSize = 4096 // maxHead: a head and body together past it are handed over
	opts.MaxRequestBody = 3000 // below the read buffer, to be hit
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}}}, Hooks{})
	if err != nil {
		f.Fatal(err)
	}
	l := &loop{lc: &loopCore{p: p}, p: p}
	l.br = bufio.NewReaderSize(&l.src, l.maxHead())
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		step := int(piece)%64 + 1
		c := &lconn{ctx: new(fasthttp.RequestCtx)}
		c.v.Reset(l.fdConfig())
		var want fasthttp.Request
		for off := 0; off < len(data); {
			if len(c.in) >= l.maxHead() {
				return // clientEvent hands a full buffer over
			}
			k := min(step, len(data)-off, l.maxHead()-len(c.in))
			c.in = append(c.in, data[off:off+k]...)
			off += k
			for {
				v := l.frame(c)
				if v == frameHandoff {
					return
				}
				if v == frameWait {
					if c.fed > len(c.in) || (c.bodyWait && c.body > c.fed) {
						t.Fatalf("waiting with fed %d, body %d of %d bytes", c.fed, c.body, len(c.in))
					}
					break
				}
				// Served: the request is c.in[:c.fed], its body the last
				// c.body bytes; fasthttp reads them alike.
				req := &c.ctx.Request
				cl := req.Header.ContentLength()
				if c.fed > len(c.in) || c.fed > l.maxHead() || c.body > loopBodyMax || c.body > opts.MaxRequestBody ||
					(cl > 0 && c.body != cl) || (cl <= 0 && c.body != 0) {
					t.Fatalf("served %d of %d bytes with a %d-byte body (Content-Length %d)", c.fed, len(c.in), c.body, cl)
				}
				want.Reset()
				if err := want.Read(bufio.NewReader(bytes.NewReader(c.in[:c.fed]))); err != nil {
					t.Fatalf("fasthttp cannot read what the loop serves %q: %v", c.in[:c.fed], err)
				}
				if body := c.in[c.fed-c.body : c.fed]; !bytes.Equal(want.Body(), body) || !bytes.Equal(want.Header.Method(), req.Header.Method()) ||
					!bytes.Equal(want.Header.RequestURI(), req.Header.RequestURI()) {
					t.Fatalf("loop serves %s %s with body %q; fasthttp reads %s %s with body %q",
						req.Header.Method(), req.Header.RequestURI(), body, want.Header.Method(), want.Header.RequestURI(), want.Body())
				}
				// requestDone: the bytes after it are the next request's.
				rest := copy(c.in, c.in[c.fed:])
				c.in, c.fed, c.body = c.in[:rest], 0, 0
			}
		}
	})
}
