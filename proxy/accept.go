package proxy

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Accept errors. fasthttp treats every accept error but a timeout as fatal:
// its Serve returns on the first "accept: too many open files", and the
// process would stay up with nobody accepting. So the proxy's listener
// retries the errors that end by themselves (descriptor exhaustion, a
// connection aborted before it was accepted, a kernel short of buffers)
// the way net/http's Server.Serve does — sleep 5 ms, doubling to 1 s —
// and only a permanent error (or Close) reaches fasthttp.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptUnreadyAfter is how long accepts may keep failing before
	// Serving reports false: long enough to ride out a burst, short
	// enough that a load balancer stops sending before clients pile up
	// in the kernel's backlog.
	acceptUnreadyAfter = time.Second
)

// temporaryAccept reports whether an accept error ends by itself, so the
// accept should be retried after a pause.
func temporaryAccept(err error) bool {
	for _, e := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, // descriptors exhausted: frees as connections close
		syscall.ECONNABORTED, syscall.ECONNRESET, // the peer gave up before accept
		syscall.ENOBUFS, syscall.ENOMEM, // kernel memory pressure
		syscall.EINTR, syscall.EAGAIN, syscall.EPROTO,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// acceptState is what the accept loop reports about itself.
type acceptState struct {
	ended        atomic.Bool  // Serve has returned
	failingSince atomic.Int64 // unix nanos of the first error of the current streak; 0: accepting
	errors       atomic.Uint64
}

// healthy reports whether the accept loop has not ended and is not stuck
// on errors. Before Serve it is true: the owner's own readiness covers
// "not started yet", and a Serve goroutine that has not run yet must not
// read as a failure.
func (a *acceptState) healthy(now time.Time) bool {
	if a.ended.Load() {
		return false
	}
	since := a.failingSince.Load()
	return since == 0 || now.Sub(time.Unix(0, since)) < acceptUnreadyAfter
}

// Serving reports whether the data plane accepts connections: Serve has
// not returned and accepts have not been failing for a second or more. The node
// ANDs it into /readyz, so a load balancer stops sending to a proxy whose
// accept loop ended or is stuck on descriptor exhaustion.
func (p *Proxy) Serving() bool { return p.accept.healthy(time.Now()) }

// AcceptErrors counts temporary accept errors retried since the proxy was built.
func (p *Proxy) AcceptErrors() uint64 { return p.accept.errors.Load() }

// backoffListener retries temporary accept errors with exponential backoff.
// Close interrupts a pause.
type backoffListener struct {
	net.Listener
	st  *acceptState
	log *slog.Logger

	closeOnce sync.Once
	closed    chan struct{}
}

func newBackoffListener(ln net.Listener, st *acceptState, log *slog.Logger) *backoffListener {
	return &backoffListener{Listener: ln, st: st, log: log, closed: make(chan struct{})}
}

// Accept returns the next connection, pausing and retrying on temporary
// errors. After Close it returns net.ErrClosed.
func (l *backoffListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if since := l.st.failingSince.Swap(0); since != 0 {
				l.log.Info("accepting again", "failing_for", time.Since(time.Unix(0, since)).Round(time.Millisecond))
			}
			return c, nil
		}
		if !temporaryAccept(err) {
			return nil, err
		}
		l.st.errors.Add(1)
		l.st.failingSince.CompareAndSwap(0, time.Now().UnixNano())
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		l.log.Warn("accept failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and interrupts a pause in Accept.
func (l *backoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
