package cellgate

import (
	"crypto/tls"
	"fmt"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/proxy"
)

// tlsConfig loads listen.tls_cert/tls_key. The certificate sits behind an
// atomic pointer that a reload replaces, so a renewed certificate is served
// to new connections without a restart.
func (n *Node) tlsConfig(cfg *configs.Config) (*tls.Config, error) {
	if err := n.loadCert(cfg); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: proxy.ALPN(), // h2 first, then http/1.1
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return n.cert.Load(), nil
		},
	}, nil
}

// loadCert reads the configured key pair into n.cert.
func (n *Node) loadCert(cfg *configs.Config) error {
	c, err := readCert(cfg)
	if err != nil {
		return err
	}
	n.cert.Store(c)
	return nil
}

// readCert reads and checks the configured key pair.
func readCert(cfg *configs.Config) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(cfg.Listen.TLSCert, cfg.Listen.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("listen.tls_cert/tls_key: %w", err)
	}
	return &c, nil
}
