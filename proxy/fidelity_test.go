package proxy

import (
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/internal/testcert"
)

// fwd127 is the tail cellgate appends for a plain-HTTP request from
// 127.0.0.1 with Host app.example, after the client's own fields.
const fwd127 = "X-Forwarded-For: 127.0.0.1\r\n" +
	"X-Forwarded-Proto: http\r\n" +
	"X-Forwarded-Host: app.example\r\n" +
	"Forwarded: for=127.0.0.1;proto=http;host=app.example\r\n" +
	"Via: 1.1 cellgate\r\n"

// okResponse is what the recorder answers unless a case says otherwise.
const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestFidelity sends raw client bytes through a proxy behind the front door
// and compares, byte for byte, what a recording upstream received with what
// should arrive: the client's request with only the documented changes
// (README "What cellgate changes in a request and a response"). Where a
// case sets a response, the client's copy of it is checked too.
func TestFidelity(t *testing.T) {
	cert, _ := testcert.New(t, "cellgate test")
	for _, tc := range []struct {
		name    string
		tls     bool   // the proxy listens with TLS
		trusted bool   // 127.0.0.0/8 is in routing.trusted_proxies
		req     string // what the client sends (Connection: close added by the case)
		want    string // exactly what the upstream must receive
		resp    string // the upstream's answer (default okResponse)
		check   func(t *testing.T, got string)
	}{{
		name: "cookies pass byte for byte, two fields kept apart",
		req: "GET /c HTTP/1.1\r\nHost: app.example\r\n" +
			"Cookie: a={\"k\":1}; b=\"q v\"; z=1\r\nCookie:  second=2;x\r\nConnection: close\r\n\r\n",
		want: "GET /c HTTP/1.1\r\nHost: app.example\r\n" +
			"Cookie: a={\"k\":1}; b=\"q v\"; z=1\r\nCookie:  second=2;x\r\n" + fwd127 + "\r\n",
	}, {
		name: "path with encoded slash and dot segments is not decoded or resolved",
		req:  "GET /echo/a%2Fb/%2e%2e/c//d%7E HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want: "GET /echo/a%2Fb/%2e%2e/c//d%7E HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
	}, {
		name: "dot-dot segment stays",
		req:  "GET /x/%2e%2e/index.html HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want: "GET /x/%2e%2e/index.html HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
	}, {
		name: "double slash, lowercase percent-encoding and empty query stay",
		req:  "GET //index.html/%c3%a9/?q=a+b&&x=%2f? HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want: "GET //index.html/%c3%a9/?q=a+b&&x=%2f? HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
	}, {
		name: "empty query stays",
		req:  "GET /echo/? HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want: "GET /echo/? HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
	}, {
		name: "field order, name case, spacing and repeated fields kept",
		req: "GET / HTTP/1.1\r\nx-b: 1\r\nHost: app.example\r\nX-A:2\r\nx-b:  3 \r\n" +
			"user-agent: t\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
		want: "GET / HTTP/1.1\r\nx-b: 1\r\nHost: app.example\r\nX-A:2\r\nx-b:  3 \r\n" +
			"user-agent: t\r\nContent-Type: text/plain\r\n" + fwd127 + "\r\n",
	}, {
		name: "hop-by-hop fields and those Connection names go",
		req: "GET / HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Keep: k\r\nConnection: close\r\n\r\n",
		want: "GET / HTTP/1.1\r\nHost: app.example\r\nX-Keep: k\r\n" + fwd127 + "\r\n",
	}, {
		name: "untrusted client's forwarding fields are replaced",
		req: "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nVia: 1.1 lb\r\nConnection: close\r\n\r\n",
		want: "GET / HTTP/1.1\r\nHost: app.example\r\n" +
			"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example\r\n" +
			"Forwarded: for=127.0.0.1;proto=http;host=app.example\r\nVia: 1.1 lb, 1.1 cellgate\r\n\r\n",
	}, {
		name:    "trusted peer's chains are appended to",
		trusted: true,
		req: "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 203.0.113.7\r\n" +
			"Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\nX-Forwarded-For: 10.0.0.2\r\nConnection: close\r\n\r\n",
		want: "GET / HTTP/1.1\r\nHost: app.example\r\n" +
			"X-Forwarded-For: 203.0.113.7, 10.0.0.2, 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example\r\n" +
			"Forwarded: for=\"[2001:db8::1]:4711\";proto=https, for=127.0.0.1;proto=http;host=app.example\r\nVia: 1.1 cellgate\r\n\r\n",
	}, {
		name: "Host with a port is quoted in Forwarded",
		req:  "GET / HTTP/1.1\r\nHost: app.example:8080\r\nConnection: close\r\n\r\n",
		want: "GET / HTTP/1.1\r\nHost: app.example:8080\r\n" +
			"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example:8080\r\n" +
			"Forwarded: for=127.0.0.1;proto=http;host=\"app.example:8080\"\r\nVia: 1.1 cellgate\r\n\r\n",
	}, {
		name: "TLS listener gives X-Forwarded-Proto https",
		tls:  true,
		req:  "GET /s HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want: "GET /s HTTP/1.1\r\nHost: app.example\r\n" +
			"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example\r\n" +
			"Forwarded: for=127.0.0.1;proto=https;host=app.example\r\nVia: 1.1 cellgate\r\n\r\n",
	}, {
		name: "HTTP/1.0 request: Via says 1.0, Host added, close-delimited chunked response",
		req:  "GET /old HTTP/1.0\r\nUser-Agent: old\r\n\r\n",
		resp: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
		// The client named no host, so neither X-Forwarded-Host nor
		// Forwarded's host= claims one; Host is the endpoint's address.
		want: "GET /old HTTP/1.1\r\nUser-Agent: old\r\nHost: UPSTREAM\r\n" +
			"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n" +
			"Forwarded: for=127.0.0.1;proto=http\r\nVia: 1.0 cellgate\r\n\r\n",
		check: func(t *testing.T, got string) {
			head, body := headOf(got)
			if hasFieldName(head, "Transfer-Encoding") || hasFieldName(head, "Content-Length") || body != "abcde" {
				t.Errorf("1.0 client got %q; want a close-delimited body \"abcde\" without Transfer-Encoding", got)
			}
		},
	}, {
		name: "chunked request body is re-chunked, Expect goes",
		req: "POST /up HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" +
			"5;ext=1\r\nhello\r\n0\r\n\r\n",
		want: "POST /up HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		check: func(t *testing.T, got string) {
			if !strings.HasPrefix(got, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200") {
				t.Errorf("client got %q; want 100 Continue then 200", got)
			}
		},
	}, {
		name: "request trailer fields follow the re-chunked body",
		req: "POST /up HTTP/1.1\r\nHost: app.example\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
		want: "POST /up HTTP/1.1\r\nHost: app.example\r\nTrailer: X-Sum\r\n" + fwd127 + "Transfer-Encoding: chunked\r\n\r\n" +
			"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
	}, {
		name: "Content-Length body passes as sent",
		req:  "PUT /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}",
		want: "PUT /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 7\r\n" + fwd127 + "\r\n{\"a\":1}",
	}, {
		name: "response: trailers forwarded, Set-Cookie kept, no Server invented",
		req:  "GET /t HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		resp: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: a=2; Path=/x\r\nTrailer: X-Sum\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
		want: "GET /t HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
		check: func(t *testing.T, got string) {
			head, body := headOf(got)
			for _, l := range []string{"Set-Cookie: a=1; Path=/", "Set-Cookie: a=2; Path=/x", "Trailer: X-Sum", "Via: 1.1 cellgate"} {
				if !hasField(head, l) {
					t.Errorf("response lacks %q:\n%s", l, got)
				}
			}
			if hasFieldName(head, "Server") {
				t.Errorf("response has an invented Server field:\n%q", got)
			}
			if body != "3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n" {
				t.Errorf("body %q, want the chunk and the trailer", body)
			}
		},
	}, {
		name: "response: field bytes, order, repeats and reason kept",
		req:  "GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		resp: "HTTP/1.1 201 Made It\r\nX-A: 1\r\nContent-Type: text/x\r\nSet-Cookie: s=\"1 2\"\r\nx-b:  2\r\n" +
			"Date: Mon\r\nX-A: 3\r\nConnection: X-Hop\r\nX-Hop: h\r\nContent-Length: 2\r\n\r\nok",
		want: "GET / HTTP/1.1\r\nHost: app.example\r\n" + fwd127 + "\r\n",
		check: func(t *testing.T, got string) {
			const want = "HTTP/1.1 201 Made It\r\nX-A: 1\r\nContent-Type: text/x\r\nSet-Cookie: s=\"1 2\"\r\nx-b:  2\r\n" +
				"Date: Mon\r\nX-A: 3\r\nContent-Length: 2\r\nVia: 1.1 cellgate\r\nConnection: close\r\n\r\nok"
			if got != want {
				t.Errorf("client got\n%q\nwant\n%q", got, want)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.resp
			if resp == "" {
				resp = okResponse
			}
			rec := startRecorder(t, resp)
			opts := testOptions()
			opts.ResponseHeaders = false
			if tc.trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{rec.addr}}}, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			var cert0 *tls.Certificate
			var clientTLS *tls.Config
			if tc.tls {
				cert0, clientTLS = cert, &tls.Config{InsecureSkipVerify: true}
			}
			addr := serveProxy(t, p, cert0)
			got := rawExchange(t, addr, tc.req, clientTLS)
			up := rec.next(t)
			want := strings.ReplaceAll(tc.want, "UPSTREAM", rec.addr)
			if up != want {
				t.Errorf("upstream received:\n%q\nwant:\n%q", up, want)
			}
			if tc.check != nil {
				tc.check(t, got)
			} else if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\nok") {
				t.Errorf("client got %q", got)
			}
		})
	}
}
