package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/proxy/frontdoor"
	"github.com/valyala/fasthttp"
)

// FuzzResponseHead feeds arbitrary upstream bytes to peekHead, split
// across reads: it never panics, never consumes a byte (fasthttp's parser
// reads the same head next), and finds the same framing however the bytes
// arrive.
func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\ncontent-length:5\r\n",
		"\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		whole, rawWhole, errWhole := peekHead(bufio.NewReaderSize(bytes.NewReader(b), 4096))
		r := bufio.NewReaderSize(&byteDrip{b: b, n: int(split%16) + 1}, 4096)
		parts, rawParts, errParts := peekHead(r)
		if (errWhole == nil) != (errParts == nil) || (errWhole == nil && (whole != parts || !bytes.Equal(rawWhole, rawParts))) {
			t.Fatalf("whole: %v %v; split by %d: %v %v", whole, errWhole, split%16+1, parts, errParts)
		}
		if got, _ := r.Peek(min(len(b), r.Buffered())); !bytes.HasPrefix(b, got) {
			t.Fatalf("peekHead consumed bytes")
		}
		if whole&headBothLengths != 0 && whole&(headContentLength|headChunked) != headContentLength|headChunked {
			t.Fatalf("both lengths without either: %v", whole)
		}
	})
}

// byteDrip yields b at most n bytes per Read.
type byteDrip struct {
	b []byte
	n int
}

func (t *byteDrip) Read(p []byte) (int, error) {
	if len(t.b) == 0 {
		return 0, bytes.ErrTooLarge // any error: the stream ends
	}
	k := copy(p[:min(len(p), t.n)], t.b)
	t.b = t.b[k:]
	return k, nil
}

// FuzzRequestHead runs arbitrary client bytes the front door accepts
// through fasthttp's parser and appendRequestHead: it never panics, the
// result is one well-formed head (a request line, field lines with a
// colon, one empty line at the end), the target is exactly the one
// received, and no hop-by-hop or client-supplied forwarding field survives.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET /a%2Fb/%2e%2e//c?x HTTP/1.1\r\nHost: h\r\nCookie: a=\"q v\"\r\nCookie: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nConnection: x-a, close\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=x\r\nVia: 1.0 a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\nTE: trailers\r\nTrailer: x\r\n\r\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, trusted bool) {
		v := frontdoor.Validate(b, frontdoor.Config{})
		if v.Refusal != nil {
			return // the front door refuses it; nothing reaches the handler
		}
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		if err := h.Read(bufio.NewReader(bytes.NewReader(b[:v.Accepted]))); err != nil {
			return
		}
		var s scrub
		in := headInfo{peer: netip.MustParseAddr("2001:db8::1"), trusted: trusted, host: "up:80", chunked: h.ContentLength() == -1}
		out := string(s.appendRequestHead(nil, &h, h.RawHeaders(), &in))
		if !strings.HasSuffix(out, "\r\n\r\n") || strings.Count(out, "\r\n\r\n") != 1 {
			t.Fatalf("head not ended by exactly one empty line:\n%q", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n\r\n"), "\r\n")
		if want := string(h.Method()) + " " + string(h.RequestURI()) + " HTTP/1.1"; lines[0] != want {
			t.Fatalf("request line %q, want %q", lines[0], want)
		}
		counts := map[string]int{}
		for _, l := range lines[1:] {
			k, _, ok := strings.Cut(l, ":")
			if !ok || k == "" || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("malformed field line %q in\n%q", l, out)
			}
			counts[strings.ToLower(k)]++
		}
		for _, k := range []string{"connection", "keep-alive", "te", "upgrade", "expect", "proxy-connection"} {
			if counts[k] > 0 {
				t.Fatalf("%s forwarded:\n%q", k, out)
			}
		}
		for _, k := range []string{"x-forwarded-for", "x-forwarded-proto", "forwarded", "via"} {
			if counts[k] != 1 {
				t.Fatalf("%d %s fields, want cellgate's one:\n%q", counts[k], k, out)
			}
		}
	})
}
