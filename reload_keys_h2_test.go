package cellgate_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/cellgate/cellgate/configs"
)

// The rows of TestReloadEveryKey for HTTP/2 and gRPC keys (see keyRow).
func init() { keyRows = append(keyRows, h2KeyRows...) }

var h2KeyRows = []keyRow{
	{key: "listen.h2c", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Listen.H2C = true },
		check: func(t *testing.T, e *keyEnv) {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
				DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}}}
			resp, err := c.Get("http://" + e.node().Addr() + "/")
			if err != nil {
				t.Fatalf("HTTP/2 prior knowledge after h2c = true: %v", err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Errorf("HTTP/2 prior knowledge after h2c = true: %s %d", resp.Proto, resp.StatusCode)
			}
		}},
	{key: "cell.protocol", hot: true, base: onlyStableA,
		edit: func(c *configs.Config, e *keyEnv) {
			c.Cells[0].Protocol = "h2c"
			c.Cells[0].Endpoints = []string{e.upstreamH2(false)}
		},
		check: upstreamSaw("HTTP/2.0 plain")},
	{key: "cell.tls", hot: true, base: onlyStableA,
		edit: func(c *configs.Config, e *keyEnv) {
			c.Cells[0].TLS = &configs.CellTLS{InsecureSkipVerify: true}
			c.Cells[0].Endpoints = []string{e.upstreamH2(true)}
		},
		check: upstreamSaw("HTTP/1.1 tls")},
	{key: "slo.grpc_error_codes", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.SLO.GRPCErrorCodes = []string{"NOT_FOUND", "UNAVAILABLE"} },
		check: func(t *testing.T, e *keyEnv) {
			if got := fmt.Sprint(e.node().Proxy().Options().GRPCErrorCodes); got != "[5 14]" {
				t.Errorf("gRPC codes counted as failures: %s, want [5 14]", got)
			}
		}},
}

// upstreamH2 starts a net/http upstream that answers with the protocol
// and transport it was reached by: h2c and HTTP/1.1 in plain, or TLS.
func (e *keyEnv) upstreamH2(withTLS bool) string {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		how := "plain"
		if r.TLS != nil {
			how = "tls"
		}
		w.Header().Set("X-Upstream-Saw", r.Proto+" "+how)
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(!withTLS)
	if withTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	e.t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// upstreamSaw checks that requests reach the new upstream as want says.
func upstreamSaw(want string) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		var ok atomic.Int32
		for range 4 {
			if r := e.get(t, "k"); r.Header.Get("X-Upstream-Saw") == want {
				ok.Add(1)
			} else {
				t.Errorf("upstream saw %q (status %d %s), want %q", r.Header.Get("X-Upstream-Saw"), r.StatusCode, r.Header.Get("X-Cellgate-Error"), want)
				return
			}
		}
	}
}
