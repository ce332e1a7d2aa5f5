package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testh1"
)

// upConnPair dials a loopback listener and returns the wrapped client side
// and the accepted server side.
func upConnPair(t *testing.T) (*upConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	u, ok := newUpConn(c).(*upConn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	// Hang guard only: every wait below ends on an event long before.
	_ = u.SetDeadline(time.Now().Add(30 * time.Second))
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	return u, s
}

// answer reads one request head from s (and a Content-Length body) and
// writes a response whose body is the request's size.
func answer(t *testing.T, s net.Conn, br *bufio.Reader) {
	head, err := testh1.ReadHead(br)
	if err != nil {
		t.Errorf("upstream read: %v", err)
		return
	}
	body := strconv.Itoa(len(head))
	if _, err := io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
		t.Errorf("upstream write: %v", err)
	}
}

// TestUpConnWriteAndWait: the head queued with sendWithRead goes out with
// the next Read, which returns the response — for a small head sent in one
// non-blocking write, and for a head larger than the socket buffers, whose
// rest is written the ordinary way once the kernel takes no more. Requests
// follow one another on the connection, and a Read without a queued head
// is a plain read.
func TestUpConnWriteAndWait(t *testing.T) {
	u, s := upConnPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(s, 64<<10)
		for range 3 {
			answer(t, s, br)
		}
	}()
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + string(bytes.Repeat([]byte("a"), 8<<20)) + "\r\n\r\n"
	for i, head := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", big, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n"} {
		u.sendWithRead([]byte(head))
		resp, err := http.ReadResponse(bufio.NewReader(u), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != strconv.Itoa(len(head)) {
			t.Fatalf("request %d: body %q (%v), want the head's size %d", i, body, err, len(head))
		}
		if u.ww.Pending() {
			t.Fatalf("request %d: head still pending after the response", i)
		}
	}
	<-done
}

// TestUpConnClosedPeer: a head sent on a connection the upstream has
// closed — the FIN came while the connection sat in the pool, so its
// readiness was spent before the combined wait began — fails at once with
// an error connLost recognises (the retry rule), instead of waiting for an
// event that never comes until the read deadline.
func TestUpConnClosedPeer(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run("reset="+strconv.FormatBool(reset), func(t *testing.T) {
			u, s := upConnPair(t)
			if reset {
				_ = s.(*net.TCPConn).SetLinger(0)
			}
			s.Close()
			// Let the FIN (or RST) arrive and be seen by the poller before
			// the combined wait starts: a plain read observes it.
			probe := make([]byte, 1)
			if _, err := u.TCPConn.Read(probe); err == nil {
				t.Fatal("the closed peer sent a byte")
			}
			u.sendWithRead([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			_, err := u.Read(make([]byte, 512))
			if err == nil || !connLost(err) {
				t.Fatalf("read after sending to a closed peer: %v; want EOF, ECONNRESET or EPIPE", err)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("waited out the deadline: %v", err)
			}
		})
	}
}
