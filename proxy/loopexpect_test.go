//go:build linux

package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// TestLoopContinueBehindAFullSocket: a 100 Continue the client's socket
// does not take at once (a client that has not read its last answers)
// waits for writability like any write, and what follows it for the same
// request waits behind it: the client gets the 100 Continue, then the rest.
// Meanwhile a head that waits for its body is still under read_timeout,
// and an upstream connect under way for a request whose body came with
// its head goes on (no stop for the client, no re-arm after it). White
// box: a loop's write path on one end of a socket pair filled until it
// takes nothing more; no sockets are served.
func TestLoopContinueBehindAFullSocket(t *testing.T) {
	opts := testOptions()
	opts.ReadTimeout, opts.WriteTimeout = 7*time.Second, 3*time.Second
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	for _, started := range []bool{false, true} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		junk := make([]byte, 64<<10)
		for {
			if _, err := rawSend(fds[0], junk); err != nil {
				break // full
			}
		}
		l := &loop{lc: &loopCore{p: p}, p: p, ep: -1, now: time.Second.Nanoseconds()}
		c := &lconn{ctx: new(fasthttp.RequestCtx), fd: fds[0], expect100: true}
		c.in = append(c.in, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"...)
		u := &lup{fd: -1, ev: unix.EPOLLOUT} // connecting
		if started {
			c.in = append(c.in, "abc"...)
			c.st, c.u = &reqState{}, u
		}
		l.continue100(c)
		l.flushBatch()
		if !c.writing || !bytes.Equal(c.out, continueHead) {
			t.Fatalf("started %v: the full socket took %d of the 100 Continue's bytes; the test needs none", started, len(continueHead)-len(c.out))
		}
		if started {
			l.toClient(c, []byte("the answer"), false)
		}
		// The client reads what it had not.
		var got []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := rawRecv(fds[1], buf)
			if n <= 0 || err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		got = got[:0]
		if l.flush(c); len(c.out) != 0 || c.writing {
			t.Fatalf("started %v: %d bytes left after writability", started, len(c.out))
		}
		for {
			n, err := rawRecv(fds[1], buf)
			if n <= 0 || err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		want := string(continueHead)
		if started {
			want += "the answer"
		}
		if string(got) != want {
			t.Errorf("started %v: the client got %q after its earlier bytes, want %q", started, got, want)
		}
		if started {
			if u.ev != unix.EPOLLOUT {
				t.Errorf("the upstream connect's interest is %#x after the 100 Continue waited, want EPOLLOUT still", u.ev)
			}
		} else if want := l.deadlineIn(opts.ReadTimeout); c.deadline != want {
			t.Errorf("the head waiting for its body has deadline %d after the 100 Continue went, want read_timeout's %d", c.deadline, want)
		}
	}
}
