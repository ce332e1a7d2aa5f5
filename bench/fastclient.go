package bench

import (
	"crypto/tls"
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// fastConn is the exchanger for https:// targets: fasthttp's HostClient
// limited to one connection, which brings TLS. Plain http:// targets use
// the leaner h1Conn.
type fastConn struct {
	hc     *fasthttp.HostClient
	req    *fasthttp.Request
	resp   *fasthttp.Response
	keyHdr string
	ok     bool // the last exchange got a response
}

func newFastConn(t target, cfg *Config, dial fasthttp.DialFunc) *fastConn {
	c := &fastConn{
		hc:     newClient(t, dial, cfg.Insecure),
		req:    fasthttp.AcquireRequest(),
		resp:   fasthttp.AcquireResponse(),
		keyHdr: cfg.KeyHeader,
	}
	c.req.SetRequestURI(t.uri)
	if cfg.Method != "" {
		c.req.Header.SetMethod(cfg.Method)
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "Host") {
			c.req.Header.SetHost(v)
			continue
		}
		c.req.Header.Set(k, v)
	}
	return c
}

// newClient returns the client of one worker: one keep-alive connection,
// owned by one goroutine. A HostClient per connection instead of one shared
// pool keeps the pool's lock out of the hot loop, the way wrk gives each
// connection its own state.
func newClient(t target, dial fasthttp.DialFunc, insecure bool) *fasthttp.HostClient {
	var tlsConfig *tls.Config
	if insecure {
		tlsConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with -k
	}
	return &fasthttp.HostClient{
		TLSConfig:                 tlsConfig,
		Addr:                      t.addr,
		Dial:                      dial, // records the connection for the timeout watchdog
		IsTLS:                     t.tls,
		Name:                      userAgent,
		MaxConns:                  1,
		MaxIdemponentCallAttempts: 1,           // a benchmark must see every failure, never a silent retry
		RetryIfErr:                noRetry,     // and fasthttp must not retry on its own either
		MaxIdleConnDuration:       time.Minute, // keep the connection through slow open-loop schedules
		ReadBufferSize:            16 << 10,    // room for proxies that add many headers
		DisablePathNormalizing:    true,        // send the path exactly as given
	}
}

func noRetry(*fasthttp.Request, int, error) (bool, bool) { return false, false }

// exchange implements exchanger.
func (c *fastConn) exchange(key []byte, _ bool) error {
	if key != nil {
		c.req.Header.SetBytesV(c.keyHdr, key)
	}
	err := c.hc.Do(c.req, c.resp)
	c.ok = err == nil
	return err
}

// response implements exchanger.
func (c *fastConn) response() (int, []byte, []byte) {
	return c.resp.StatusCode(), c.resp.Header.Peek(HeaderCell), c.resp.Header.Peek(HeaderError)
}

// stale implements exchanger.
func (c *fastConn) stale(err error) bool { return errors.Is(err, fasthttp.ErrConnectionClosed) }

// keepAlive implements exchanger.
func (c *fastConn) keepAlive() bool { return c.ok && !c.resp.ConnectionClose() }

// closeConn implements exchanger.
func (c *fastConn) closeConn() { c.hc.CloseIdleConnections() }

// release returns the request state to fasthttp's pools.
func (c *fastConn) release() {
	c.hc.CloseIdleConnections()
	fasthttp.ReleaseRequest(c.req)
	fasthttp.ReleaseResponse(c.resp)
}
