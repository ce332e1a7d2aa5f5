package bench

import (
	"bufio"
	"errors"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/cellgate/cellgate/internal/rawio"
	"github.com/valyala/fasthttp"
)

// exchanger is one worker's connection to the target: it sends a request
// and reads the response. One goroutine owns it; nothing in it is shared.
type exchanger interface {
	// exchange sends one request carrying key in the key header (nil sends
	// none) and reads the whole response. idle says the connection sat
	// unused since its last response (the worker slept), so the server may
	// have sent or closed something meanwhile.
	exchange(key []byte, idle bool) error
	// response returns the last exchanged response's status and cellgate
	// headers; the slices are valid until the next exchange.
	response() (status int, cell, cgErr []byte)
	// stale reports whether err says the connection was dead before any
	// response byte arrived, so that an idempotent request may be resent.
	stale(err error) bool
	// keepAlive reports whether the connection may carry another request.
	keepAlive() bool
	// closeConn drops the connection; the next exchange dials anew.
	closeConn()
	// release closes the connection for good at the end of the run.
	release()
}

// userAgent identifies the load in the target's logs.
const userAgent = "cellgate-bench"

// h1Conn is a minimal HTTP/1.1 client over one keep-alive connection, for
// plain http:// targets. Per request it writes one pre-built byte slice
// (only the key value changes) and parses just what the generator reports
// (see readResponse); it does not pipeline, retry or follow redirects.
// Compared with fasthttp's HostClient it skips the request and response
// objects, header maps and connection pool, which were most of the
// generator's CPU per request besides the syscalls.
type h1Conn struct {
	dial     fasthttp.DialFunc
	addr     string
	headOnly bool   // HEAD: responses have no body
	head     []byte // the request up to the key value, or all of it without keys
	keyed    bool   // head ends in "Key-Header: "
	buf      []byte // the request being sent
	conn     net.Conn
	src      rawio.WriteWait // write-and-wait under br (internal/rawio)
	br       *bufio.Reader   // reads src
	resp     h1Response
	started  bool // the last exchange received a response byte
}

// newH1Conn prepares the request bytes for cfg's target.
func newH1Conn(t target, cfg *Config, dial fasthttp.DialFunc) *h1Conn {
	c := &h1Conn{dial: dial, addr: t.addr}
	c.br = bufio.NewReaderSize(&c.src, 16<<10) // room for proxies that add many headers
	method := cfg.Method
	if method == "" {
		method = "GET"
	}
	c.headOnly = method == "HEAD"
	c.keyed = cfg.Keys > 0
	c.head = buildRequestHead(method, t, cfg)
	c.buf = slices.Grow(slices.Clone(c.head), len(cfg.KeyPrefix)+24)
	return c
}

// buildRequestHead writes the request line and the fixed header fields.
// Extra headers replace the defaults of the same name; the key header, if
// any, comes last with its value left open.
func buildRequestHead(method string, t target, cfg *Config) []byte {
	host, ua := t.host, userAgent
	names := make([]string, 0, len(cfg.Headers))
	for k, v := range cfg.Headers {
		switch {
		case strings.EqualFold(k, "Host"):
			host = v
		case strings.EqualFold(k, "User-Agent"):
			ua = v
		case cfg.Keys > 0 && strings.EqualFold(k, cfg.KeyHeader):
			// the key replaces it, as fasthttp's Header.Set did
		default:
			names = append(names, k)
		}
	}
	slices.Sort(names) // the same bytes on every connection and run
	b := []byte(method + " " + t.path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	if ua != "" {
		b = append(b, "User-Agent: "+ua+"\r\n"...)
	}
	if method != "GET" && method != "HEAD" && !hasHeader(cfg.Headers, "Content-Length") {
		// An empty body, announced (RFC 9110 §8.6), as fasthttp sends it.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for _, k := range names {
		b = append(b, k+": "+cfg.Headers[k]+"\r\n"...)
	}
	if cfg.Keys > 0 {
		return append(b, cfg.KeyHeader+": "...)
	}
	return append(b, "\r\n"...)
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// exchange implements exchanger.
func (c *h1Conn) exchange(key []byte, idle bool) error {
	c.started = false
	fresh := c.conn == nil
	if fresh {
		conn, err := c.dial(c.addr)
		if err != nil {
			return err
		}
		c.conn = conn
		c.src.Reset(conn)
		c.br.Reset(&c.src)
	}
	req := c.head
	if c.keyed {
		c.buf = append(append(append(c.buf[:0], c.head...), key...), "\r\n\r\n"...)
		req = c.buf
	}
	var err error
	if fresh || idle || c.br.Buffered() > 0 {
		// Something may be waiting already: a server that speaks first, a
		// close or bytes sent while the connection sat idle, or bytes past
		// the last response (read as the next one). Only a new readiness
		// would wake the combined send-and-wait, so read the ordinary way.
		_, err = c.conn.Write(req)
	} else {
		err = c.src.SendWithRead(req)
	}
	if err != nil {
		c.closeConn()
		return err
	}
	started, err := readResponse(c.br, &c.resp, c.headOnly)
	c.started = started
	if err != nil || c.resp.close {
		c.closeConn()
	}
	return err
}

// response implements exchanger.
func (c *h1Conn) response() (int, []byte, []byte) { return c.resp.status, c.resp.cell, c.resp.cgErr }

// stale implements exchanger: the connection ended or was reset before a
// response byte came back.
func (c *h1Conn) stale(err error) bool {
	return !c.started && (errors.Is(err, errConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// keepAlive implements exchanger.
func (c *h1Conn) keepAlive() bool { return c.conn != nil }

// release implements exchanger.
func (c *h1Conn) release() { c.closeConn() }

// closeConn implements exchanger.
func (c *h1Conn) closeConn() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
		c.src.Reset(nil)
	}
}
