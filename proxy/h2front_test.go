package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cellgate/cellgate/internal/testcert"
	"github.com/valyala/fasthttp"
)

// headUpstream answers "hello" with a fixed header and remembers the
// last request head it received, byte for byte.
func headUpstream(t testing.TB) (addr string, last func() string) {
	t.Helper()
	var mu sync.Mutex
	var head string
	addr = startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		head = string(ctx.Request.Header.Method()) + " " + string(ctx.Request.Header.RequestURI()) + " HTTP/1.1\r\n" + string(ctx.Request.Header.RawHeaders())
		mu.Unlock()
		ctx.Response.Header.Set("X-Up", "yes")
		ctx.SetBodyString("hello")
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return head }
}

// TestH2OverTLS: a client offering h2 by ALPN gets HTTP/2, and the same
// status, fields and body an HTTP/1.1 client gets.
func TestH2OverTLS(t *testing.T) {
	up, last := headUpstream(t)
	cert, pool := testcert.New(t, "cellgate test")
	opts := testOptions()
	p, addr := startEdge(t, opts, []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, Hooks{}, cert)
	req, _ := http.NewRequest("GET", "https://"+addr+"/p?q=1", nil)
	req.Header.Set("Cookie", "a=1; b=2") // Go's HTTP/2 client sends each piece as its own field
	resp, err := h2TLSClient(pool).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("got %s %d %q, want HTTP/2 200 hello", resp.Proto, resp.StatusCode, body)
	}
	if resp.Header.Get("X-Up") != "yes" || resp.Header.Get("X-Cellgate-Cell") != "a" {
		t.Fatalf("headers %v: want X-Up and X-Cellgate-Cell", resp.Header)
	}
	h := last()
	for _, want := range []string{"GET /p?q=1 HTTP/1.1\r\n", "host: " + addr + "\r\n", "X-Forwarded-Proto: https\r\n", "cookie: a=1; b=2\r\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("upstream head lacks %q:\n%s", want, h)
		}
	}
	// HTTP/1.1 over the same TLS listener still works.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(pool, "http/1.1")}}
	t.Cleanup(h1.CloseIdleConnections)
	resp, err = h1.Get("https://" + addr + "/p")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 1 || string(body) != "hello" || resp.Header.Get("X-Cellgate-Cell") != "a" {
		t.Fatalf("HTTP/1.1 over TLS: %s %q %v", resp.Proto, body, resp.Header)
	}
	if got := p.Status()[0].Protocols; got["h1"] != 1 || got["h2"] != 1 || got["grpc"] != 0 {
		t.Errorf("requests by protocol %v, want one h1 and one h2", got)
	}
}

// TestH2CPriorKnowledge: with H2C the preface decides; without it the
// preface is refused and HTTP/1.1 is served as before.
func TestH2CPriorKnowledge(t *testing.T) {
	up, last := headUpstream(t)
	cells := []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}
	for _, on := range []bool{true, false} {
		opts := testOptions()
		opts.H2C = on
		_, addr := startEdge(t, opts, cells, Hooks{}, nil)
		resp, err := h2cClient().Get("http://" + addr + "/x")
		if !on {
			if err == nil {
				resp.Body.Close()
				t.Fatalf("h2c off: got %s %d, want the preface refused", resp.Proto, resp.StatusCode)
			}
			r := rawRequest(t, addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
			if r.StatusCode() != 505 || !strings.Contains(string(r.Body()), "listen.h2c") {
				t.Fatalf("h2c off: the preface got %d %q, want 505 naming listen.h2c", r.StatusCode(), r.Body())
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || string(body) != "hello" {
				t.Fatalf("h2c: %s %q", resp.Proto, body)
			}
			if !strings.Contains(last(), "GET /x HTTP/1.1\r\n") {
				t.Fatalf("upstream head:\n%s", last())
			}
		}
		r1 := rawRequest(t, addr, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
		if r1.StatusCode() != 200 || string(r1.Body()) != "hello" {
			t.Fatalf("h2c=%v: HTTP/1.1 got %d %q", on, r1.StatusCode(), r1.Body())
		}
	}
}

// TestH1ClientToH2Cell: an HTTP/1.1 client reaches an h2c cell: the
// upstream sees HTTP/2 with the client's fields, the client gets the body
// chunked and the upstream's trailers after it.
func TestH1ClientToH2Cell(t *testing.T) {
	up := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Saw-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Saw-Te", r.Header.Get("Te"))
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
	})
	_, addr := startEdge(t, testOptions(), []CellSpec{{Name: "h", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}}, Hooks{}, nil)
	r := rawRequest(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nTE: trailers\r\nConnection: TE\r\n\r\n")
	if r.StatusCode() != 200 || string(r.Body()) != "body" {
		t.Fatalf("got %d %q", r.StatusCode(), r.Body())
	}
	if p, c := string(r.Header.Peek("X-Proto")), string(r.Header.Peek("X-Saw-Cookie")); p != "HTTP/2.0" || c != "a=1; b=2" {
		t.Errorf("upstream saw %s cookie %q", p, c)
	}
	if te := string(r.Header.Peek("X-Saw-Te")); te != "trailers" {
		t.Errorf("upstream saw te %q, want trailers (kept toward HTTP/2)", te)
	}
	if v := string(r.Header.Peek("X-Sum")); v != "42" {
		t.Errorf("trailer X-Sum %q, want 42 (header %q trailer %q)", v, r.Header.Header(), r.Header.TrailerHeader())
	}
}
