package frontdoor

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestSplitInvariance feeds every raw-socket case split in two at every
// point: the verdict must equal the one-shot verdict, and must match what
// the socket test expects.
func TestSplitInvariance(t *testing.T) {
	for _, tc := range doorCases() {
		if len(tc.raw) > 2048 {
			continue
		}
		p := []byte(tc.raw)
		whole := Validate(p, Config{})
		for i := 1; i < len(p); i++ {
			v := NewValidator(Config{})
			n1, r := v.Feed(p[:i])
			if r == nil {
				_, r = v.Feed(p[i:])
			}
			if r != whole.Refusal || v.Requests() != whole.Requests {
				t.Fatalf("%s split at %d: %v/%d, whole %v/%d", tc.name, i, r, v.Requests(), whole.Refusal, whole.Requests)
			}
			if n1 > i {
				t.Fatalf("%s: accepted %d of %d bytes", tc.name, n1, i)
			}
		}
	}
}

func TestValidateVerdicts(t *testing.T) {
	cases := []struct {
		name     string
		raw      string
		refusal  *Refusal
		requests int
		partial  bool
		accepted int // -1: all
	}{
		{"complete GET", get, nil, 1, false, -1},
		{"GET missing final CRLF", get[:len(get)-2], nil, 0, true, -1},
		{"GET then bad version", get + "GET / HTTP/2.0\r\n", refuseVersionNumber, 1, false, len(get)},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", refuseH2Preface, 0, false, 0},
		{"body cut short", postHdr + "Content-Length: 10\r\n\r\nabc", nil, 0, true, -1},
		{"OPTIONS absolute-form", "OPTIONS http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", nil, 1, false, -1},
		{"IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", nil, 1, false, -1},
		{"Host port too big", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", refuseHostInvalid, 0, false, len("GET / HTTP/1.1\r\n")},
		{"empty Host is valid", "GET / HTTP/1.1\r\nHost:\r\n\r\n", nil, 1, false, -1},
		{"15 hex digits fit", chunked + "000000000000001\r\nx\r\n0\r\n\r\n", nil, 1, false, -1},
		{"16 hex digits overflow", chunked + "0000000000000001\r\nx\r\n0\r\n\r\n", refuseChunkOverflow, 0, false, len(chunked)},
		{"chunk ext BWS around =", chunked + "1;a = \"b\" ;c\r\nx\r\n0\r\n\r\n", nil, 1, false, -1},
		{"chunk ext trailing space", chunked + "1;a \r\nx\r\n0\r\n\r\n", refuseChunkExt, 0, false, len(chunked)},
		{"quoted-pair with CTL", chunked + "1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n", refuseChunkExt, 0, false, len(chunked)},
		{"empty TE element", postHdr + "Transfer-Encoding: chunked,\r\n\r\n", refuseTEMalformed, 0, false, len(postHdr)},
		{"underscore in other names passes", "GET / HTTP/1.1\r\nHost: a\r\nX_Custom: 1\r\n\r\n", nil, 1, false, -1},
		{"trailer Content_Length", chunked + "0\r\nContent_Length: 5\r\n\r\n", refuseTrailer, 0, false, len(chunked) + 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Validate([]byte(tc.raw), Config{})
			want := tc.accepted
			if want < 0 {
				want = len(tc.raw)
			}
			if got.Refusal != tc.refusal || got.Requests != tc.requests || got.Partial != tc.partial || got.Accepted != want {
				t.Errorf("got %+v, want refusal %v requests %d partial %v accepted %d",
					got, tc.refusal, tc.requests, tc.partial, want)
			}
		})
	}
}

func TestCheckParsed(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want *Refusal
	}{
		{"plain GET", get, nil},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", refuseTrace},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", answerOptionsStar},
		{"Content_Length", "GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 1\r\n\r\n", refuseUnderscoreFrame},
		{"userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", refuseHostUserinfo},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			if err := h.Read(bufioReader(tc.raw)); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := CheckParsed(&h); got != tc.want {
				t.Errorf("CheckParsed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWrapKeepsTLSVisible(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	tc := tls.Server(a, &tls.Config{})
	w := Wrap(tc, Config{})
	if _, ok := w.(interface{ ConnectionState() tls.ConnectionState }); !ok {
		t.Fatal("wrapped TLS conn hides ConnectionState from fasthttp")
	}
	if Unwrap(w) == nil {
		t.Fatal("Unwrap lost the Conn")
	}
	_ = w.Close()
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
