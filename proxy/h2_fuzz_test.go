package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// FuzzH2Head: whatever an HTTP/2 client sends that x/net lets through (a
// lowercase token name, a value without CR, LF or NUL), readH2Head either
// refuses it or yields an HTTP/1.1 head that fasthttp reads as exactly
// that one request: the same method, target and authority, one field per
// value sent (Cookie pieces joined), and framing only as the stream
// declared it. Nothing can be re-framed into a second request.
func FuzzH2Head(f *testing.F) {
	f.Add("GET", "/a?b=c", "example.com", "x-user-id", "42", "cookie", "a=1", "b=2", int64(0))
	f.Add("POST", "/up", "h:8080", "content-length", "5", "x", "y", "z", int64(5))
	f.Add("POST", "/g.S/M", "h", "te", "trailers", "content-type", "application/grpc", "", int64(-1))
	f.Add("GET", "/a b", "h", "x", "1", "y", "2", "", int64(0))
	f.Add("GET", "/", "h", "cookie", "a=1", "x", "1", "b=2", int64(0)) // two cookie fields
	f.Add("GET", "/", "h", "x", "a\r\nGET /smuggled HTTP/1.1", "y", "", "", int64(0))
	f.Add("GET", "/", "h", "transfer-encoding", "chunked", "host", "other", "", int64(0))
	f.Fuzz(func(t *testing.T, method, path, host, n1, v1, n2, v2, v3 string, cl int64) {
		r := &http.Request{Method: method, RequestURI: path, Host: host, Header: http.Header{}, ContentLength: cl, Body: http.NoBody}
		if cl != 0 {
			r.Body = io.NopCloser(strings.NewReader(""))
		}
		for _, kv := range [][3]string{{n1, v1, v3}, {n2, v2, ""}} {
			if !httpguts.ValidHeaderFieldName(kv[0]) || strings.ToLower(kv[0]) != kv[0] {
				continue // x/net refuses such a name
			}
			for _, v := range kv[1:] {
				if httpguts.ValidHeaderFieldValue(v) && v != "" {
					r.Header.Add(http.CanonicalHeaderKey(kv[0]), v)
				}
			}
		}
		var h fasthttp.RequestHeader
		if err := readH2Head(&h, r); err != nil {
			return
		}
		// Every HTTP/1.1 parser must split the request line the same way:
		// exactly two spaces, nothing below 0x21 elsewhere.
		line, _, _ := strings.Cut(string(appendH2Head(nil, r)), "\r\n")
		if strings.Count(line, " ") != 2 || strings.ContainsFunc(line, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			t.Fatalf("request line %q could be split more than one way", line)
		}
		if string(h.Method()) != method || string(h.RequestURI()) != path || string(h.Host()) != host {
			t.Fatalf("read %q %q host %q, sent %q %q host %q", h.Method(), h.RequestURI(), h.Host(), method, path, host)
		}
		want := 1 // host
		for k, vs := range r.Header {
			switch k {
			case "Host", "Transfer-Encoding":
			case "Cookie":
				want++
			default:
				want += len(vs)
			}
		}
		if r.ContentLength < 0 {
			want++ // transfer-encoding: chunked, ours
		}
		got := 0
		for rest := h.RawHeaders(); len(rest) > 0; {
			var k []byte
			k, _, _, rest = nextField(rest)
			if len(k) > 0 {
				got++
			}
		}
		if got != want {
			t.Fatalf("%d field lines read back, want %d:\n%s", got, want, h.RawHeaders())
		}
		if te := h.Peek("transfer-encoding"); len(te) > 0 && (r.ContentLength >= 0 || string(te) != "chunked") {
			t.Fatalf("transfer-encoding %q for a stream that declared length %d", te, r.ContentLength)
		}
	})
}

// FuzzGRPCTrailerFields: the gRPC fields cellgate reads from an upstream,
// grpc-status and grpc-timeout, parse only when well-formed, and what
// parses is what was sent.
func FuzzGRPCTrailerFields(f *testing.F) {
	for _, s := range []string{"0", "14", "007", "-1", "+3", "999", "1000", "", "1H", "99999999n", "100000000S", "5m", "3x", "m", "2562047H"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if code, ok := parseGRPCStatus(v); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n != code || code < 0 || v[0] == '+' {
				t.Fatalf("grpc-status %q read as %d", v, code)
			}
		}
		if d, ok := parseGRPCTimeout([]byte(v)); ok {
			if d < 0 || len(v) > 9 || len(v) < 2 {
				t.Fatalf("grpc-timeout %q read as %v", v, d)
			}
			n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
			if err != nil || n < 0 {
				t.Fatalf("grpc-timeout %q: not digits and a unit, yet read as %v", v, d)
			}
			unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
			if unit == 0 || (n <= int64(1<<63-1)/int64(unit) && d != time.Duration(n)*unit) {
				t.Fatalf("grpc-timeout %q read as %v", v, d)
			}
		}
	})
}
