package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// startEdge makes a proxy and serves it as a node does (serveProxy). It
// returns the proxy and its address.
func startEdge(t testing.TB, opts Options, cells []CellSpec, hooks Hooks, cert *tls.Certificate) (*Proxy, string) {
	t.Helper()
	p, err := New(opts, 42, cells, hooks)
	if err != nil {
		t.Fatal(err)
	}
	return p, serveProxy(t, p, cert)
}

// h2cUpstream serves h with net/http speaking HTTP/2 with prior knowledge
// (and HTTP/1.1) on 127.0.0.1:0 until the test ends, and returns its
// address.
func h2cUpstream(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// h2cClient is Go's HTTP/2 client speaking prior knowledge over plain TCP.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// h2TLSClient is Go's HTTP/2 client over TLS trusting pool.
func h2TLSClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}},
	}}
}

func tlsConfig(pool *x509.CertPool, protos ...string) *tls.Config {
	return &tls.Config{RootCAs: pool, NextProtos: protos}
}
