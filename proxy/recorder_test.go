package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testh1"
	"github.com/cellgate/cellgate/proxy/frontdoor"
)

// recorder is an upstream that keeps the exact bytes of every request it
// receives — head and body as they came off the wire, framing included —
// and answers each with a fixed raw response. It parses only as much as
// it needs to find where a request ends; it is a recorder, not an echo.
type recorder struct {
	addr string
	got  chan string
}

// startRecorder runs a recorder on 127.0.0.1:0 answering resp.
func startRecorder(t testing.TB, resp string) *recorder {
	t.Helper()
	r := &recorder{got: make(chan string, 16)}
	r.addr = serveRaw(t, func(c net.Conn) { r.serve(c, resp) })
	return r
}

func (r *recorder) serve(c net.Conn, resp string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		msg, err := readRawMessage(br)
		if err != nil {
			return
		}
		r.got <- msg
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		if strings.Contains(strings.ToLower(resp), "\r\nconnection: close\r\n") {
			return // as it said: a close-delimited body ends here
		}
	}
}

// next returns the next recorded request, or fails the test.
func (r *recorder) next(t testing.TB) string {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("recorder: no request arrived")
		return ""
	}
}

// readRawMessage reads one request's exact bytes: the head, then a body
// framed by Content-Length or chunked coding (chunk lines and trailers
// included verbatim).
func readRawMessage(br *bufio.Reader) (string, error) {
	var out strings.Builder
	head, err := testh1.ReadHead(br)
	out.WriteString(head)
	if err != nil {
		return out.String(), err
	}
	length, chunked := 0, false
	for line := range strings.Lines(head) {
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		switch strings.ToLower(k) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(v), "chunked")
		}
	}
	if !chunked {
		b := make([]byte, length)
		_, err := io.ReadFull(br, b)
		out.Write(b)
		return out.String(), err
	}
	for {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			return out.String(), err
		}
		size, err := strconv.ParseInt(strings.TrimRight(strings.SplitN(line, ";", 2)[0], "\r\n"), 16, 64)
		if err != nil {
			return out.String(), err
		}
		if size == 0 { // the trailer section ends as a head does
			trailers, err := testh1.ReadHead(br)
			out.WriteString(trailers)
			return out.String(), err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return out.String(), err
		}
		out.Write(b)
	}
}

// rawExchange writes req on a fresh connection to addr (TLS when tlsConf is
// set) and returns everything the proxy sent back until it closed the
// connection (requests say Connection: close or are HTTP/1.0).
func rawExchange(t testing.TB, addr, req string, tlsConf *tls.Config) string {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read response: %v (after %q)", err, b)
	}
	return string(b)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// serveProxy serves p the way a node does: TCP on 127.0.0.1:0, then TLS
// when cert is set (offering ALPN(), TLS 1.2 at least), then the front
// door with its default limits. It returns the address, and stops p at the
// end of the test once Serve has returned.
func serveProxy(t testing.TB, p *Proxy, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: ALPN(), MinVersion: tls.VersionTLS12})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Serve(frontdoor.Listen(ln, frontdoor.Config{}))
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-done
		if s := p.LoopStats(); s != (LoopStats{}) {
			t.Logf("loop core: %+v", s)
		}
	})
	return addr
}

// headOf returns the response head (status line and fields, no empty
// line) and the rest.
func headOf(resp string) (head, body string) {
	head, body, _ = strings.Cut(resp, "\r\n\r\n")
	return head, body
}

// fieldLines returns the head's field lines.
func fieldLines(head string) []string {
	lines := strings.Split(head, "\r\n")
	return lines[1:]
}

// hasField reports whether the head holds the exact line.
func hasField(head, line string) bool {
	for _, l := range fieldLines(head) {
		if l == line {
			return true
		}
	}
	return false
}

// hasFieldName reports whether the head holds a field with the name.
func hasFieldName(head, name string) bool {
	for _, l := range fieldLines(head) {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
