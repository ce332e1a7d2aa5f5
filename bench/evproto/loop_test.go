//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startLoop serves a loop on a loopback port in front of upstream, in the
// given system call mode, and stops it when the test ends.
func startLoop(t *testing.T, upstream string, mode int) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	l, err := newLoop(ln.(*net.TCPListener), upstream, "direct")
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	l.mode = mode
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	t.Cleanup(func() {
		l.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after Stop")
		}
	})
	return addr
}

// TestLoopProxiesKeepAlive sends keep-alive GETs and a HEAD through the
// loop with net/http's client, in each system call mode: bodies arrive
// whole, the cell header is added, hop-by-hop fields do not reach the
// upstream, X-Forwarded-For does. (Connection reuse is TestLoopPipelined's:
// net/http may dial a second connection while the first is on its way back
// to the idle pool.)
func TestLoopProxiesKeepAlive(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Conn", r.Header.Get("Connection")+"|"+r.Header.Get("Keep-Alive"))
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}))
	defer up.Close()
	for mode := modeRuntime; mode <= modeRawWait; mode++ {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			addr := startLoop(t, up.Listener.Addr().String(), mode)
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for i := 0; i < 5; i++ {
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/p%d", addr, i), nil)
				req.Header.Set("Keep-Alive", "timeout=5")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if got, want := string(body), fmt.Sprintf("path=/p%d", i); got != want {
					t.Errorf("body %q, want %q", got, want)
				}
				if got := resp.Header.Get("X-Cellgate-Cell"); got != "direct" {
					t.Errorf("X-Cellgate-Cell %q", got)
				}
				if got := resp.Header.Get("X-Seen-Conn"); got != "|" {
					t.Errorf("upstream saw Connection|Keep-Alive %q, want none", got)
				}
				if got := resp.Header.Get("X-Seen-XFF"); got != "127.0.0.1" {
					t.Errorf("upstream saw X-Forwarded-For %q", got)
				}
			}
			resp, err := c.Head("http://" + addr + "/h")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != int64(len("path=/h")) {
				t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
			}
			if _, err := c.Get("http://" + addr + "/after-head"); err != nil {
				t.Fatalf("GET after HEAD: %v", err)
			}
		})
	}
}

// TestLoopFrontDoorRefuses shows the front door in front of the loop: a
// request with two Host fields gets the validator's 400 and nothing
// reaches the upstream.
func TestLoopFrontDoorRefuses(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	addr := startLoop(t, up.Listener.Addr().String(), modeRawWait)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("X-Cellgate-Error"), "bad-request") {
		t.Errorf("got %d %q, want the front door's 400", resp.StatusCode, resp.Header.Get("X-Cellgate-Error"))
	}
	if hits.Load() != 0 {
		t.Errorf("upstream saw %d requests", hits.Load())
	}
}

// TestLoopPipelined sends two requests in one write: both are answered,
// in order, on the one connection (the second waits in the loop's buffer
// while the first is upstream); a third sent after them is answered on the
// same connection too (keep-alive).
func TestLoopPipelined(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	defer up.Close()
	for mode := modeRuntime; mode <= modeRawWait; mode++ {
		addr := startLoop(t, up.Listener.Addr().String(), mode)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(c)
		for _, want := range []string{"/first", "/second", "/third"} {
			if want == "/third" {
				io.WriteString(c, "GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("mode %d, %s: %v", mode, want, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != want {
				t.Errorf("mode %d: body %q (%v), want %q", mode, body, err, want)
			}
		}
		c.Close()
	}
}
