package cellgate_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testcert"
)

// TestTLSListener serves clients over TLS (listen.tls_cert/tls_key), with
// the front door validating the decrypted stream.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t, t.TempDir(), "cellgate test")
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
