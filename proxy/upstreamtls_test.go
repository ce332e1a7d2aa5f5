package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for upstream.test and a client
// certificate, all written as PEM files the way an operator hands them to
// [cell.tls].
type testPKI struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cellgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue(2, "upstream", x509.ExtKeyUsageServerAuth, []string{"upstream.test"})
	cliDER, cliKey := issue(3, "cellgate-edge", x509.ExtKeyUsageClientAuth, nil)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	pki := testPKI{
		caFile:     write("ca.pem", "CERTIFICATE", caDER),
		clientCert: write("client.pem", "CERTIFICATE", cliDER),
		clientKey:  write("client-key.pem", "EC PRIVATE KEY", cliKeyDER),
		pool:       x509.NewCertPool(),
		server:     tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
	}
	pki.pool.AddCert(ca)
	return pki
}

// TestUpstreamMutualTLS: a cell whose endpoints demand a client certificate
// signed by their CA and present a certificate for upstream.test, reached
// over HTTP/1.1 and over HTTP/2 with ca_file, server_name, cert_file and
// key_file. The upstream (Go's net/http server) sees the proxy's client
// certificate and the protocol asked for; without the client certificate,
// or with a server name the certificate does not carry, nothing reaches
// the handler and the client gets a 502.
func TestUpstreamMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s %s", r.Proto, cn)
	}))
	up.EnableHTTP2 = true
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}
	// Handshake errors are the expected outcome of the refused cases.
	up.Config.ErrorLog = log.New(io.Discard, "", 0)
	up.StartTLS()
	t.Cleanup(up.Close)
	upAddr := up.Listener.Addr().String()

	full := UpstreamTLS{CAFile: pki.caFile, ServerName: "upstream.test", CertFile: pki.clientCert, KeyFile: pki.clientKey}
	noClientCert := full
	noClientCert.CertFile, noClientCert.KeyFile = "", ""
	wrongName := full
	wrongName.ServerName = "other.test"
	for _, tc := range []struct {
		name   string
		proto  string
		tls    UpstreamTLS
		status int
		body   string
	}{
		{"http1", ProtoHTTP1, full, 200, "HTTP/1.1 cellgate-edge"},
		{"h2", ProtoH2, full, 200, "HTTP/2.0 cellgate-edge"},
		{"http1 without client certificate", ProtoHTTP1, noClientCert, 502, ""},
		{"h2 without client certificate", ProtoH2, noClientCert, 502, ""},
		{"http1 wrong server name", ProtoHTTP1, wrongName, 502, ""},
		{"h2 wrong server name", ProtoH2, wrongName, 502, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upTLS := tc.tls
			_, addr := startEdge(t, testOptions(), []CellSpec{{Name: "m", Version: "v1", Endpoints: []string{upAddr}, Weight: 1, Protocol: tc.proto, TLS: &upTLS}}, Hooks{}, nil)
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
			resp, err := c.Get("http://" + addr + "/whoami")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			c.CloseIdleConnections()
			if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
				t.Fatalf("status %d body %q (X-Cellgate-Error %q), want %d %q",
					resp.StatusCode, body, resp.Header.Get("X-Cellgate-Error"), tc.status, tc.body)
			}
		})
	}
}
