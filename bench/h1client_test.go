package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testh1"
)

func TestBuildRequestHead(t *testing.T) {
	tg, err := parseTarget("http://example.test:8080/a/b?x=1#frag")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "plain get", cfg: Config{}, want: "GET /a/b?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: cellgate-bench\r\n\r\n"},
		{
			name: "headers sorted, host and agent replaced",
			cfg:  Config{Method: "GET", Headers: map[string]string{"X-B": "2", "host": "h", "X-A": "1", "User-Agent": "me"}},
			want: "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: me\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
		},
		{
			name: "keyed, key header from -H dropped",
			cfg:  Config{Keys: 3, KeyHeader: "X-User-ID", Headers: map[string]string{"x-user-id": "fixed"}},
			want: "GET /a/b?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: cellgate-bench\r\nX-User-ID: ",
		},
		{name: "post announces empty body", cfg: Config{Method: "POST"}, want: "POST /a/b?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: cellgate-bench\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.cfg.Method
			if method == "" {
				method = "GET"
			}
			if got := string(buildRequestHead(method, tg, &tt.cfg)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRequestTarget(t *testing.T) {
	for raw, want := range map[string]string{
		"http://a":              "/",
		"http://a/":             "/",
		"http://a?q=1":          "/?q=1",
		"http://a:80/p/%2F?q#f": "/p/%2F?q",
		"https://u@a/x":         "/x",
	} {
		if got := requestTarget(raw); got != want {
			t.Errorf("requestTarget(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestConfigRejectsInjection(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"header value":    func(c *Config) { c.Headers = map[string]string{"X-A": "1\r\nEvil: 1"} },
		"header name":     func(c *Config) { c.Headers = map[string]string{"X A": "1"} },
		"method":          func(c *Config) { c.Method = "GET /x" },
		"key prefix":      func(c *Config) { c.Keys, c.KeyPrefix = 1, "a\nb" },
		"path with space": func(c *Config) { c.URL = "http://a/b c" },
	} {
		c := testConfig("http://127.0.0.1:1/")
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// closingServer answers each connection's first request with keep-alive
// framing and then closes the connection, as a server with a short idle
// timeout does between two requests.
func closingServer(t *testing.T) string {
	t.Helper()
	return serveRaw(t, func(c net.Conn) {
		defer c.Close()
		if _, err := testh1.ReadHead(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
	})
}

// TestStaleKeepAliveResent: an idempotent request that finds its
// keep-alive connection closed is resent once and counted; a POST is not.
func TestStaleKeepAliveResent(t *testing.T) {
	url := closingServer(t)
	cfg := testConfig(url)
	cfg.Connections = 1
	cfg.Rate = 200
	cfg.Duration = 200 * time.Millisecond
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.StaleRetries == 0 || res.Status[200] != res.Requests {
		t.Errorf("GET: errors %v, resent %d, status %v of %d: want all 200 and resends", res.ErrorsBy, res.StaleRetries, res.Status, res.Requests)
	}

	cfg.Method = "POST"
	res, err = Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StaleRetries != 0 || res.Errors == 0 || res.ErrorsBy[CauseClosed]+res.ErrorsBy[CauseReset] != res.Errors {
		t.Errorf("POST: errors %v, resent %d: want closed/reset errors and no resend", res.ErrorsBy, res.StaleRetries)
	}
}

// TestChunkedAndClosingResponses runs against net/http, which frames
// flushed responses as chunked and honours Connection: close.
func TestChunkedAndClosingResponses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderCell, "cell-"+r.Header.Get("X-User-ID"))
		if r.Header.Get("X-User-ID") == "user-1" {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
		w.(http.Flusher).Flush() // chunked from here on
		_, _ = w.Write([]byte("tail"))
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL + "/")
	cfg.Keys = 2
	cfg.Duration = 300 * time.Millisecond
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Status[200] != res.Requests || len(res.Cells) != 2 {
		t.Errorf("errors %v status %v of %d cells %+v", res.ErrorsBy, res.Status, res.Requests, res.Cells)
	}
}

// TestMalformedResponseIsAnError: garbage from the target is an error
// with a fixed cause, not a panic or a hang.
func TestMalformedResponseIsAnError(t *testing.T) {
	url := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.WriteString(c, "SSH-2.0-nope\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	cfg := testConfig(url)
	cfg.Rate = 100
	cfg.Duration = 100 * time.Millisecond
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors != res.ErrorsBy[CauseOther+": "+errStatusLine.Error()] {
		t.Errorf("errors %d by cause %v: want all %q", res.Errors, res.ErrorsBy, errStatusLine)
	}
}
