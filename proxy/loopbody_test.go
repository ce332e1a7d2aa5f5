//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// post is a POST of body on one connection; more follows it on the wire.
func post(path, body, more string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s", path, len(body), more, body)
}

// padTo pads a POST's body so the whole request is n bytes.
func padTo(n int) string {
	req := post("/", "", "Connection: close\r\n")
	body := strings.Repeat("p", n-len(req))
	for len(post("/", body, "Connection: close\r\n")) > n { // the length field grew by a digit
		body = body[1:]
	}
	return post("/", body, "Connection: close\r\n")
}

// TestLoopBodySameBytes: requests with bodies, written whole or one byte
// per write, pipelined, at the loop's bound and past it, from a client
// that stops mid-body, past max_request_body: the upstream receives the
// same bytes from both cores (head with its Content-Length, body as is,
// each request once) and the client reads the same bytes back; the loop
// serves the bodies within its bound (loopbody.go) and hands over, at the
// head, the ones past it.
func TestLoopBodySameBytes(t *testing.T) {
	const upResp = "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"
	kib := strings.Repeat(`{"prompt":"abcdefgh"}`, 49)[:1000] // ~1 KiB of JSON-ish bytes
	closeGET := "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name    string
		req     string
		trickle bool // one byte per write
		half    bool // the client stops after the first half (read_timeout)
		rbuf    int  // Options.ReadBufferSize; 0: 40 KiB, as a node sizes it
		maxBody int  // Options.MaxRequestBody
		served  uint64
		handed  bool
	}{
		{name: "POST 1 KiB", req: post("/", kib, "Connection: close\r\n"), served: 1},
		{name: "POST 1 KiB one byte per write", req: post("/", kib, "Connection: close\r\n"), trickle: true, served: 1},
		{name: "pipelined POSTs then a GET", req: post("/1", kib, "") + post("/2", "{}", "") + closeGET, served: 3},
		{name: "pipelined POSTs one byte per write", req: post("/1", "ab", "") + post("/2", "{}", "") + closeGET, trickle: true, served: 3},
		{name: "body at loopBodyMax", req: post("/", strings.Repeat("b", loopBodyMax), "Connection: close\r\n"), served: 1},
		{name: "body one byte past loopBodyMax", req: post("/", strings.Repeat("b", loopBodyMax+1), "Connection: close\r\n"), handed: true},
		{name: "POST then a body past the bound", req: post("/1", "a", "") + post("/2", strings.Repeat("b", loopBodyMax+1), "Connection: close\r\n"), served: 1, handed: true},
		{name: "request filling the read buffer", req: padTo(4096), rbuf: 4096, served: 1},
		{name: "request one byte past the read buffer", req: padTo(4097), rbuf: 4096, handed: true},
		{name: "body at max_request_body", req: post("/", "0123456789", "Connection: close\r\n"), maxBody: 10, served: 1},
		{name: "body past max_request_body (413)", req: post("/", "0123456789x", "Connection: close\r\n"), maxBody: 10, handed: true},
		{name: "client stops mid-body (408)", req: post("/", kib, "Connection: close\r\n"), half: true, served: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, upstream := map[string]string{}, map[string]string{}
			for _, core := range []string{CoreGoroutine, CoreLoop} {
				rec := startRecorder(t, upResp)
				p, addr := loopProxy(t, core, rec.addr, func(o *Options) {
					o.ReadBufferSize = 40 << 10
					if tc.rbuf > 0 {
						o.ReadBufferSize = tc.rbuf
					}
					o.MaxRequestBody = tc.maxBody
					if tc.half {
						o.ReadTimeout = 200 * time.Millisecond // awaited, not timed: the answer comes when it fires
					}
				})
				req := tc.req
				if tc.half {
					req = req[:len(req)-len(kib)/2]
				}
				client[core] = maskDate(writeExchange(t, addr, req, tc.trickle))
				var ups []string
				for len(rec.got) > 0 { // the recorder records a request before it answers
					ups = append(ups, <-rec.got)
				}
				upstream[core] = strings.Join(ups, "|")
				if core == CoreLoop {
					if s := p.LoopStats(); s.Served != tc.served || (s.Handed == 1) != tc.handed || s.Handed > 1 {
						t.Errorf("loop stats %+v; want %d served, handed %v", s, tc.served, tc.handed)
					}
				}
			}
			if client[CoreLoop] != client[CoreGoroutine] || client[CoreLoop] == "" {
				t.Errorf("client: loop core sent\n%q\ngoroutine core sent\n%q", client[CoreLoop], client[CoreGoroutine])
			}
			if upstream[CoreLoop] != upstream[CoreGoroutine] {
				t.Errorf("upstream: loop core sent\n%q\ngoroutine core sent\n%q", upstream[CoreLoop], upstream[CoreGoroutine])
			}
			if tc.half && !strings.HasPrefix(client[CoreLoop], "HTTP/1.1 408 ") {
				t.Errorf("client that stopped mid-body: %q, want a 408", client[CoreLoop])
			}
		})
	}
}

// writeExchange is rawExchange, optionally writing one byte per write (a
// body that arrives in pieces). The writes may still coalesce on the wire;
// the loop must not care either way.
func writeExchange(t *testing.T, addr, req string, trickle bool) string {
	t.Helper()
	if !trickle {
		return rawExchange(t, addr, req, nil)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < len(req); i++ {
		if _, err := io.WriteString(c, req[i:i+1]); err != nil {
			t.Fatalf("write byte %d: %v", i, err)
		}
	}
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read response: %v (after %q)", err, b)
	}
	return string(b)
}

// TestLoopBodyNeverResent: an upstream that reads a whole request and
// resets the connection before answering gets a request with a body once:
// not repeated on the same endpoint (a stale connection's repeat) nor
// retried on the cell's other endpoint, even for an idempotent PUT — the
// client gets 502, as from the goroutine core. A bodiless GET, lost the
// same way, is retried on the other endpoint (the control).
func TestLoopBodyNeverResent(t *testing.T) {
	for _, tc := range []struct {
		name, req string
		status    string
		retried   bool
	}{
		{"POST", post("/", `{"a":1}`, "Connection: close\r\n"), "HTTP/1.1 502 ", false},
		{"PUT", strings.Replace(post("/", `{"a":1}`, "Connection: close\r\n"), "POST", "PUT", 1), "HTTP/1.1 502 ", false},
		{"GET (control)", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, core := range []string{CoreGoroutine, CoreLoop} {
				var resets, live atomic.Int64
				resetter := serveRaw(t, func(c net.Conn) {
					defer c.Close()
					if _, err := readRawMessage(bufio.NewReader(c)); err != nil {
						return
					}
					resets.Add(1)
					_ = c.(*net.TCPConn).SetLinger(0) // close sends RST
				})
				opts := testOptions()
				opts.Core = core
				p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{resetter, okUpstream(t, &live)}}},
					Hooks{Rand: func() uint64 { return 0 }}) // the resetter first
				if err != nil {
					t.Fatal(err)
				}
				got[core] = maskDate(rawExchange(t, serveProxy(t, p, nil), tc.req, nil))
				if !strings.HasPrefix(got[core], tc.status) {
					t.Errorf("%s: %q, want %q", core, got[core], tc.status)
				}
				if resets.Load() != 1 || (live.Load() == 1) != tc.retried || live.Load() > 1 {
					t.Errorf("%s: the resetting endpoint got %d requests, the other %d; want 1 and retried %v", core, resets.Load(), live.Load(), tc.retried)
				}
				if s := p.LoopStats(); core == CoreLoop && (s.Served != 1 || s.Handed != 0) {
					t.Errorf("loop stats %+v, want it served", s)
				}
			}
			if got[CoreLoop] != got[CoreGoroutine] {
				t.Errorf("loop core sent\n%q\ngoroutine core sent\n%q", got[CoreLoop], got[CoreGoroutine])
			}
		})
	}
}
