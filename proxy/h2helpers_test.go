package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cellgate/cellgate/proxy/frontdoor"
	"golang.org/x/net/http2"
)

// startEdge serves a proxy the way a node does: TCP, then TLS when cert is
// given (offering ALPN()), then the front door. It returns the address.
func startEdge(t testing.TB, opts Options, cells []CellSpec, hooks Hooks, cert *tls.Certificate) (*Proxy, string) {
	t.Helper()
	p, err := New(opts, 42, cells, hooks)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: ALPN(), MinVersion: tls.VersionTLS12})
	}
	go p.Serve(frontdoor.Listen(ln, frontdoor.DefaultConfig())) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p, addr
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
