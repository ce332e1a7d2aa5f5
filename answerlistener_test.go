package cellgate

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// gatedListener hands out one end of a pipe when gate is closed: an
// Accept the socket has answered but that has not yet returned.
type gatedListener struct {
	net.Listener
	gate   chan struct{}
	server net.Conn
}

func (g *gatedListener) Accept() (net.Conn, error) {
	<-g.gate
	return g.server, nil
}

// TestWaitAnsweredCoversAnAcceptUnderWay: stop waits for a connection
// whose Accept is still under way when it looks, not only for those
// already accepted; otherwise the admin server was shut down under it and
// its request got EOF during a handover.
func TestWaitAnsweredCoversAnAcceptUnderWay(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	g := &gatedListener{gate: make(chan struct{}), server: server}
	l := newAnswerListener(g)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	testwait.For(t, 30*time.Second, "Accept to begin", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.accepting == 1
	})
	// Accept is under way (the socket may have handed it a connection):
	// waitAnswered must not find nothing to wait for. Load only makes the
	// wait longer, so the lower bound is safe on any machine.
	const max = 50 * time.Millisecond
	start := time.Now()
	l.waitAnswered(context.Background(), max)
	if took := time.Since(start); took < max {
		t.Fatalf("waitAnswered returned after %v with an Accept under way, want it to wait (up to %v)", took, max)
	}
	close(g.gate)
	c := <-accepted
	go func() { _, _ = client.Read(make([]byte, 1)) }()
	_, _ = c.Write([]byte("x"))
	// Answered: nothing left to wait for.
	l.waitAnswered(context.Background(), 30*time.Second)
	l.mu.Lock()
	n := len(l.pending) + l.accepting
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections still pending after the answer", n)
	}
}
