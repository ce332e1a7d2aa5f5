package frontdoor

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// countingUpstream is a fasthttp server behind the front door that records
// every request its handler receives (method, path and body), so a test can
// tell served requests from refused ones. It answers 200 "ok".
type countingUpstream struct {
	addr string

	mu  sync.Mutex // guards got
	got []string
}

func startUpstream(t *testing.T, cfg Config) *countingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	u := &countingUpstream{addr: ln.Addr().String()}
	srv := &fasthttp.Server{
		Handler: u.handle,
		// The buffer must hold a full head at our limits, or fasthttp
		// refuses long heads itself before the front door can.
		ReadBufferSize: 64 << 10,
		ReadTimeout:    10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(Listen(ln, cfg))
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return u
}

func (u *countingUpstream) handle(ctx *fasthttp.RequestCtx) {
	rec := string(ctx.Method()) + " " + string(ctx.Path())
	if b := ctx.PostBody(); len(b) > 0 {
		rec += " body=" + string(b)
	}
	u.mu.Lock()
	u.got = append(u.got, rec)
	u.mu.Unlock()
	ctx.SetBodyString("ok")
}

func (u *countingUpstream) served() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got)
}

// exchange writes raw on a fresh connection (without closing the write
// side, so a hang shows as a timeout) and reads up to n responses; then, if
// wantClose, it checks that the server closed the connection with nothing
// more to say.
func exchange(t *testing.T, addr, raw string, n int, wantClose bool) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %d: %v", len(out)+1, n, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Set("X-Test-Body", string(body))
		out = append(out, resp)
	}
	if wantClose {
		extra, err := br.ReadByte()
		if err == nil {
			rest, _ := br.Peek(br.Buffered())
			t.Fatalf("want close after %d responses, got more bytes: %q", n, append([]byte{extra}, rest...))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("want close after %d responses, connection hung", n)
		}
	}
	return out
}

const (
	get     = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	getOne  = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
	postHdr = "POST /up HTTP/1.1\r\nHost: a\r\n"
	chunked = postHdr + "Transfer-Encoding: chunked\r\n\r\n"
)

type doorCase struct {
	name   string
	raw    string
	want   []int    // statuses in order
	code   string   // X-Cellgate-Error of the last response, when refused
	served []string // what the upstream handler must have received, exactly
	open   bool     // the connection stays open (no close expected)
}

// refused is the usual expectation: nothing served, one refusal, close.
func refused(name, raw string, status int, code string) doorCase {
	return doorCase{name: name, raw: raw, want: []int{status}, code: code}
}

func bad(name, raw string) doorCase { return refused(name, raw, 400, "bad-request") }

func doorCases() []doorCase {
	long := strings.Repeat("a", 9000)
	manyFields := strings.Repeat("X-Fill: "+strings.Repeat("v", 1000)+"\r\n", 40)
	tooMany := strings.Repeat("X-N: 1\r\n", 101)
	return []doorCase{
		// Positive cases.
		{name: "pipelined keep-alive GETs", raw: getOne + get + "GET /three?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []int{200, 200, 200}, served: []string{"GET /one", "GET /", "GET /three"}, open: true},
		{name: "chunked POST with extensions and trailers",
			raw:  chunked + "5;a=b;c=\"q \\\" x\"\r\nhello\r\n6; d = e\r\n world\r\n0;last\r\nX-Check: 1\r\n\r\n" + getOne,
			want: []int{200, 200}, served: []string{"POST /up body=hello world", "GET /one"}, open: true},
		{name: "HTTP/1.0 GET without Host", raw: "GET /old HTTP/1.0\r\n\r\n",
			want: []int{200}, served: []string{"GET /old"}},
		{name: "TE Chunked with OWS agrees with fasthttp on framing",
			raw:  postHdr + "Transfer-Encoding:  Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n" + getOne,
			want: []int{200, 200}, served: []string{"POST /up body=abc", "GET /one"}, open: true},
		{name: "Content-Length body that looks like a request",
			raw:  postHdr + "Content-Length: 28\r\n\r\n" + getOne[:28] + getOne,
			want: []int{200, 200}, served: []string{"POST /up body=" + getOne[:28], "GET /one"}, open: true},
		{name: "absolute-form with matching Host", raw: "GET http://A.example:80/abs?x HTTP/1.1\r\nHost: a.example:80\r\n\r\n",
			want: []int{200}, served: []string{"GET /abs"}, open: true},
		{name: "one empty line before the request", raw: "\r\n" + getOne,
			want: []int{200}, served: []string{"GET /one"}, open: true},
		{name: "obs-text in a field value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\r\n\r\n",
			want: []int{200}, served: []string{"GET /"}, open: true},

		// Framing.
		bad("CL and TE", postHdr+"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
		{name: "valid GET pipelined before a CL.TE smuggle", raw: getOne + postHdr +
			"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []int{200, 400}, code: "bad-request", served: []string{"GET /one"}},
		bad("two differing Content-Length", postHdr+"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
		bad("two identical Content-Length", postHdr+"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
		bad("Content-Length +5", postHdr+"Content-Length: +5\r\n\r\nhello"),
		bad("Content-Length list 1,1", postHdr+"Content-Length: 1,1\r\n\r\nh"),
		bad("Content-Length -1", postHdr+"Content-Length: -1\r\n\r\n"),
		bad("Content-Length 19 digits", postHdr+"Content-Length: 1000000000000000000\r\n\r\n"),
		bad("TE identity", postHdr+"Transfer-Encoding: identity\r\n\r\n"),
		bad("TE chunked, gzip", postHdr+"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
		refused("TE gzip, chunked", postHdr+"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not-implemented"),
		bad("TE chunked, chunked", postHdr+"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
		bad("TE twice", postHdr+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
		bad("TE with parameter", postHdr+"Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"),
		bad("TE in HTTP/1.0", "POST /up HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
		bad("Content_Length", postHdr+"Content_Length: 5\r\n\r\nhello"),
		bad("Transfer_Encoding", postHdr+"Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n"),

		// Chunked bodies.
		bad("chunk ext with bad token", chunked+"5;a@b\r\nhello\r\n0\r\n\r\n"),
		bad("chunk ext bare semicolon", chunked+"5;\r\nhello\r\n0\r\n\r\n"),
		bad("chunk ext with control character", chunked+"5;a\x01=b\r\nhello\r\n0\r\n\r\n"),
		bad("chunk ext unterminated quote", chunked+"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
		bad("whitespace after chunk size", chunked+"5 \r\nhello\r\n0\r\n\r\n"),
		bad("chunk size not hex", chunked+"g\r\n0\r\n\r\n"),
		bad("chunk size 17 hex digits", chunked+"10000000000000000\r\nx\r\n0\r\n\r\n"),
		bad("last chunk ends in bare LF", chunked+"0\r\n\n"),
		bad("chunk data without CRLF", chunked+"5\r\nhelloXX0\r\n\r\n"),
		bad("Host in trailer", chunked+"0\r\nHost: evil\r\n\r\n"),
		{name: "valid chunked POST pipelined before a bad chunk",
			raw:  chunked + "1\r\nx\r\n0\r\n\r\n" + chunked + "1;\x00\r\ny\r\n0\r\n\r\n",
			want: []int{200, 400}, code: "bad-request", served: []string{"POST /up body=x"}},

		// Lines and fields.
		bad("LF-only line ends", "GET / HTTP/1.1\nHost: a\n\n"),
		bad("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"),
		bad("whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
		bad("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
		bad("non-token field name", "GET / HTTP/1.1\r\nHost: a\r\nX(a): b\r\n\r\n"),
		bad("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n"),
		bad("CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"),
		bad("too many empty lines first", "\r\n\r\n\r\n\r\n\r\n"+get),

		// Host.
		bad("two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
		bad("no Host in HTTP/1.1", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"),
		bad("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"),
		bad("Host with comma", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"),
		bad("absolute-form Host mismatch", "GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("absolute-form with userinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n"),

		// Request line.
		refused("HTTP/9.9", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505, "version-not-supported"),
		refused("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "version-not-supported"),
		bad("lowercase http/1.1", "GET / http/1.1\r\nHost: a\r\n\r\n"),
		bad("bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("overlong UTF-8 target", "GET /\xc0\xaf HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("broken percent-encoding", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"),
		bad("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
		refused("request line over limit", "GET /"+long+" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "uri-too-long"),
		refused("header bytes over limit", "GET / HTTP/1.1\r\nHost: a\r\n"+manyFields+"\r\n", 431, "headers-too-large"),
		refused("header count over limit", "GET / HTTP/1.1\r\nHost: a\r\n"+tooMany+"\r\n", 431, "headers-too-large"),

		// Methods answered at the door.
		refused("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501, "not-implemented"),
		refused("TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405, "method-not-allowed"),
		refused("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),

		// A refusal the server never reads is never sent.
		{name: "junk after Connection: close is ignored",
			raw:  "GET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/9.9\r\n\r\n",
			want: []int{200}, served: []string{"GET /one"}},
	}
}

func TestFrontDoorRawSocket(t *testing.T) {
	for _, tc := range doorCases() {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, Config{})
			resps := exchange(t, u.addr, tc.raw, len(tc.want), !tc.open)
			var got []int
			for _, r := range resps {
				got = append(got, r.StatusCode)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("statuses = %v, want %v", got, tc.want)
			}
			last := resps[len(resps)-1]
			if tc.code != "" || len(tc.served) < len(tc.want) {
				if c := last.Header.Get("X-Cellgate-Error"); c != tc.code {
					t.Errorf("X-Cellgate-Error = %q, want %q", c, tc.code)
				}
				if !last.Close {
					t.Errorf("refusal without Connection: close")
				}
			}
			if last.StatusCode == 405 || (last.StatusCode == 200 && len(tc.served) < len(tc.want)) {
				if last.Header.Get("Allow") == "" {
					t.Errorf("status %d without Allow", last.StatusCode)
				}
			}
			if served := u.served(); !slices.Equal(served, tc.served) {
				t.Errorf("upstream served %q, want %q", served, tc.served)
			}
		})
	}
}
