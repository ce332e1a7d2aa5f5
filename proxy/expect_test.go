package proxy

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestExpectContinue: a request with "Expect: 100-continue" and a small
// body gets "100 Continue" from the proxy before it sends its body — the
// client waits for it, as curl does — and then its answer; one whose body
// came with its head gets the same bytes. The upstream gets each request
// once, its body whole and no Expect, on one connection: the interim
// answer does not disturb the connect of the request behind it. On the
// loop core, the loop serves both (loopexpect.go).
func TestExpectContinue(t *testing.T) {
	var conns atomic.Int64
	got := make(chan string, 4)
	up := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			msg, err := readRawMessage(br)
			if err != nil {
				return
			}
			got <- msg
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	opts := testOptions()
	opts.ReadBufferSize = 40 << 10 // as a node sizes it
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveProxy(t, p, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang guard
	br := bufio.NewReader(c)
	write := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	const cont = "HTTP/1.1 100 Continue\r\n\r\n"
	readContinue := func(what string) {
		t.Helper()
		b := make([]byte, len(cont))
		if _, err := io.ReadFull(br, b); err != nil || string(b) != cont {
			t.Fatalf("%s: %q (%v), want %q", what, b, err, cont)
		}
	}
	readAnswer := func(what string) {
		t.Helper()
		head, err := br.ReadString('\n')
		if err != nil || head != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("%s: status line %q (%v), want 200", what, head, err)
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if l == "\r\n" {
				break
			}
		}
		b := make([]byte, 2)
		if _, err := io.ReadFull(br, b); err != nil || string(b) != "ok" {
			t.Fatalf("%s: body %q (%v), want ok", what, b, err)
		}
	}
	head := func(body, extra string) string {
		return "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nExpect: 100-continue\r\n" + extra + "\r\n"
	}

	// The body with its head, on a connection that must be dialled.
	write(head("first", "") + "first")
	readContinue("head and body in one write")
	readAnswer("head and body in one write")
	// The head alone: the body follows the 100 Continue.
	write(head(strings.Repeat("s", 3000), "Connection: close\r\n"))
	readContinue("head alone")
	write(strings.Repeat("s", 3000))
	readAnswer("head, then body after the 100 Continue")

	for i, want := range []string{"first", strings.Repeat("s", 3000)} {
		var msg string
		select {
		case msg = <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("request %d never reached the upstream", i)
		}
		if !strings.HasSuffix(msg, "\r\n\r\n"+want) || strings.Contains(strings.ToLower(msg), "expect:") {
			t.Errorf("upstream got %.200q, want the body %.20q… and no Expect", msg, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the upstream took %d connections, want 1", n)
	}
	if p.Core() == CoreLoop {
		if s := p.LoopStats(); s.Served != 2 || s.Handed != 0 {
			t.Errorf("loop stats %+v, want both requests served by the loop", s)
		}
	}
}
