package cellgate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate and key for 127.0.0.1 and returns
// their paths and a pool that trusts the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return writeSelfSignedIn(t, t.TempDir(), "cellgate test")
}

// writeSelfSignedIn is writeSelfSigned into dir, named cn (the files are
// named after cn too, so one dir can hold several).
func writeSelfSignedIn(t *testing.T, dir, cn string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, cn+"-cert.pem"), filepath.Join(dir, cn+"-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSListener serves clients over TLS (listen.tls_cert/tls_key), with
// the front door validating the decrypted stream.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t)
	c := startCluster(t, fmt.Sprintf("[routing]\nsticky_key = [\"header:X-User-ID\"]\n"),
		cellDef{"stable-a", "v1", 1, 1})
	c.stop()
	// Restart the same cells behind a TLS listener.
	cfgText := fmt.Sprintf("[listen]\naddr = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\n[admin]\naddr = \"\"\n[state]\npath = %q\n[[cell]]\nname = \"stable-a\"\nweight = 1\nendpoints = [%q]\n",
		certFile, keyFile, filepath.Join(t.TempDir(), "j.db"), c.cells["stable-a"].Addr())
	tc := startFromText(t, cfgText)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	resp, err := client.Get("https://" + tc.node.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Cellgate-Cell") != "stable-a" || resp.TLS == nil {
		t.Fatalf("TLS request: %d, cell %q, tls %v", resp.StatusCode, resp.Header.Get("X-Cellgate-Cell"), resp.TLS != nil)
	}
	// A malformed request inside TLS is refused by the front door.
	conn, err := tls.Dial("tcp", tc.node.Addr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	if got := string(buf[:n]); len(got) < 12 || got[:12] != "HTTP/1.1 400" {
		t.Fatalf("CL+TE over TLS answered %q", got)
	}
}
