package frontdoor

import (
	"net"
	"strings"
	"testing"
)

// typicalGET is a ~300-byte browser-like GET.
const typicalGET = "GET /api/v1/items/12345?include=owner&sort=desc HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=4f1c2a9be07d; theme=dark\r\n" +
	"X-Request-ID: 0b7e4d2c-1f3a-4c8e-9d6b-5a2f7e1c3b9d\r\n" +
	"\r\n"

// chunkedPOST is a POST with a chunked body of three chunks, one extension
// and a trailer.
var chunkedPOST = "POST /upload HTTP/1.1\r\nHost: shop.example.com\r\n" +
	"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"400;sig=abc\r\n" + strings.Repeat("x", 1024) + "\r\n" +
	"400\r\n" + strings.Repeat("y", 1024) + "\r\n" +
	"10\r\n" + strings.Repeat("z", 16) + "\r\n" +
	"0\r\nX-Checksum: 1234\r\n\r\n"

func benchFeed(b *testing.B, msg string, split int) {
	b.Helper()
	v := NewValidator(Config{})
	p := []byte(msg)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		for rest := p; len(rest) > 0; {
			n := min(split, len(rest))
			if _, r := v.Feed(rest[:n]); r != nil {
				b.Fatalf("refused: %s", r.Reason)
			}
			rest = rest[n:]
		}
	}
	if v.Requests() == 0 {
		b.Fatal("no requests validated")
	}
}

func BenchmarkValidateGET(b *testing.B) {
	b.Run("whole", func(b *testing.B) { benchFeed(b, typicalGET, len(typicalGET)) })
	b.Run("split64", func(b *testing.B) { benchFeed(b, typicalGET, 64) })
}

func BenchmarkValidateChunkedPOST(b *testing.B) {
	b.Run("whole", func(b *testing.B) { benchFeed(b, chunkedPOST, len(chunkedPOST)) })
	b.Run("split512", func(b *testing.B) { benchFeed(b, chunkedPOST, 512) })
}

func BenchmarkValidatePipelined16(b *testing.B) {
	benchFeed(b, strings.Repeat(typicalGET, 16), 4096)
}

func TestFeedDoesNotAllocate(t *testing.T) {
	for name, msg := range map[string]string{"get": typicalGET, "chunked": chunkedPOST} {
		v := NewValidator(Config{})
		p := []byte(msg)
		v.Feed(p[:37]) // warm the carry buffer
		v.Feed(p[37:])
		allocs := testing.AllocsPerRun(100, func() {
			v.Feed(p[:37])
			v.Feed(p[37:])
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, allocs)
		}
	}
}

// loopConn is a net.Conn whose every Read yields one copy of msg.
type loopConn struct {
	net.Conn
	msg []byte
}

func (c *loopConn) Read(p []byte) (int, error) { return copy(p, c.msg), nil }

// BenchmarkConnRead measures the whole wrapper per request: one read from
// the socket, validation, hand-over.
func BenchmarkConnRead(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{{"get", typicalGET}, {"pipelined4", strings.Repeat(typicalGET, 4)}} {
		b.Run(bc.name, func(b *testing.B) {
			c := Wrap(&loopConn{msg: []byte(bc.msg)}, Config{}).(*Conn)
			p := make([]byte, 4096)
			b.SetBytes(int64(len(bc.msg)))
			b.ReportAllocs()
			for b.Loop() {
				for c.v.Requests(); ; {
					if _, err := c.Read(p); err != nil {
						b.Fatal(err)
					}
					if len(c.pending) == 0 {
						break
					}
				}
			}
		})
	}
}
