package rawio

import (
	"io"
	"net"
	"testing"
)

// TestWriteWaitWithoutFD: a connection without a file descriptor (net.Pipe)
// cannot combine the write with the wait, so SendWithRead writes at once
// and Read is the connection's own. (The combined path is tested through
// the proxy's upConn: TestUpConnWriteAndWait, TestUpConnClosedPeer.)
func TestWriteWaitWithoutFD(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Errorf("peer read %q, %v", buf, err)
		}
		_, _ = s.Write([]byte("pong"))
	}()
	var w WriteWait
	if w.Reset(c) {
		t.Fatal("Reset reported a raw connection for net.Pipe")
	}
	if err := w.SendWithRead([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if w.Pending() {
		t.Fatal("the request was queued, not written")
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(&w, got); err != nil || string(got) != "pong" {
		t.Fatalf("read %q, %v", got, err)
	}
}
