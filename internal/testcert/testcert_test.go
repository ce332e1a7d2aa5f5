package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestWriteLoadsAndVerifies: the written files load as a key pair, and
// the certificate verifies as a server's for 127.0.0.1 against the
// returned pool.
func TestWriteLoadsAndVerifies(t *testing.T) {
	certFile, keyFile, pool := Write(t, t.TempDir(), "cellgate test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err != nil {
		t.Fatalf("the written certificate does not verify for 127.0.0.1: %v", err)
	}
}
