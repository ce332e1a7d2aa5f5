package democell

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestCloseCutsAnUnfinishedRequest: a connection that sent part of a
// request head and then nothing keeps fasthttp's Shutdown waiting for
// ever; Close cuts it after its grace and says so, so a test that failed
// half-way ends instead of hanging in its cleanup.
func TestCloseCutsAnUnfinishedRequest(t *testing.T) {
	s, err := Start("c", "v1")
	if err != nil {
		t.Fatal(err)
	}
	s.grace = 100 * time.Millisecond
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A whole request first, so the connection is surely being served, then
	// the start of a second that never ends.
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost:")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("first answer: %q, %v", buf[:n], err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "were cut") {
			t.Errorf("Close = %v, want the cut reported", err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a timing assert
		t.Fatal("Close still waits for a connection in the middle of a request")
	}
	if _, err := c.Read(buf); err == nil {
		t.Error("the unfinished connection is still open after Close")
	}
}

// TestCloseRightAfterStart: a test that fails between starting a cell
// and using it closes the cell at once, maybe before its Serve goroutine
// has run; Close must still end (fasthttp's Shutdown before Serve
// returns at once, and the Serve that follows would serve for ever).
func TestCloseRightAfterStart(t *testing.T) {
	for range 20 {
		s, err := Start("c", "v1")
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(30 * time.Second): // a hang guard, not a timing assert
			t.Fatal("Close right after Start still waits for Serve")
		}
	}
}
