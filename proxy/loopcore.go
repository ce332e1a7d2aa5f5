//go:build linux

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cellgate/cellgate/proxy/frontdoor"
)

// The loop core (Options.Core = CoreLoop). One epoll event loop per
// GOMAXPROCS accepts on the proxy's listening socket (each through its own
// duplicate, registered EPOLLEXCLUSIVE, so one loop wakes per connection),
// owns the client connections it accepted and a pool of upstream
// connections per endpoint, and serves the common request itself with the
// goroutine core's request path: an HTTP/1.1 request with no body or a
// small Content-Length body it buffers (loopbody.go) — no
// Transfer-Encoding, no Upgrade, no Expect but 100-continue, which it
// answers itself (loopexpect.go) — to a plain HTTP/1.1 cell.
// Everything else — chunked and larger request bodies, upgrades,
// HTTP/1.0, HTTP/2 prefaces, front-door refusals, OFREP, configs with
// HTTP/2 or TLS cells — is handed to the goroutine core at a request
// boundary, before any byte of that request went upstream: the socket is
// duplicated into a net.Conn, the bytes already read are put back in
// front of it, and it takes the path an accepted connection takes (front
// door, connection tracking, HTTP/2 sorting, fasthttp). bench/README.md
// ("Loop core") says why and what it measured.

// loopCore is the running loops and what they share.
type loopCore struct {
	p     *Proxy
	loops []*loop
	ln    *net.TCPListener // the listener Serve was given, beneath the front door
	// fd is the front door's config when Serve's listener had one; nil:
	// connections are handed over unwrapped, as they were accepted.
	fd *frontdoor.Config
	// rawBlock makes the loops' blocking wait raw and bounded (loopsys.go),
	// as the prototype's; set by CELLGATE_LOOP_RAW_WAIT=1, for measuring.
	rawBlock bool
	// lock locks each loop to its thread (runtime.LockOSThread); set by
	// CELLGATE_LOOP_LOCK=1, for measuring (loop.run says why not by default).
	lock bool

	handed    chan net.Conn // connections for the goroutine core (loopListener.Accept)
	closed    chan struct{} // the listener closed: no more accepts, hand-offs go straight to a server
	closeOnce sync.Once
	wg        sync.WaitGroup // running loops
}

// loopSupported reports whether the loop core can run here.
func loopSupported() error { return nil }

// startLoops starts the loop core on ln (Serve's listener, perhaps the
// front door's) and returns the listener the goroutine core serves
// instead: it yields the connections the loops hand over. ok is false when
// ln is not a plain TCP listener (TLS): the goroutine core serves it all.
func (p *Proxy) startLoops(ln net.Listener) (net.Listener, bool, error) {
	inner, cfg, hasFD := frontdoor.Unlisten(ln)
	tcp, ok := inner.(*net.TCPListener)
	if !ok {
		p.loopDeclined.Store(true)
		p.log.Warn("core \"loop\" serves plain TCP listeners only; the goroutine core serves this one")
		return nil, false, nil
	}
	lc := &loopCore{p: p, ln: tcp, handed: make(chan net.Conn), closed: make(chan struct{}),
		rawBlock: os.Getenv("CELLGATE_LOOP_RAW_WAIT") == "1", lock: os.Getenv("CELLGATE_LOOP_LOCK") == "1"}
	if hasFD {
		lc.fd = &cfg
	}
	n := runtime.GOMAXPROCS(0)
	if p.opts.loops > 0 {
		n = p.opts.loops
	}
	for i := 0; i < n; i++ {
		l, err := newLoop(lc)
		if err != nil {
			for _, l := range lc.loops {
				l.release()
			}
			return nil, false, fmt.Errorf("loop core: %w", err)
		}
		lc.loops = append(lc.loops, l)
	}
	p.conns.setLooped()
	for _, l := range lc.loops {
		lc.wg.Add(1)
		go l.run()
	}
	p.mu.Lock()
	p.loops = lc
	p.mu.Unlock()
	p.log.Info("loop core serving", "loops", len(lc.loops))
	return &loopListener{lc: lc}, true, nil
}

// handoff gives c (a connection a loop handed over, wrapped as an
// accepted one) to the goroutine core: through Accept while the listener
// is open, straight to the current server after it closed (a drain: the
// accept loop has ended but the connection's request must be served).
func (lc *loopCore) handoff(c net.Conn) {
	select {
	case lc.handed <- c:
		return
	case <-lc.closed:
	}
	p := lc.p
	tc := &trackedConn{Conn: c, t: &p.conns}
	p.conns.admit(tc) // uncapped: the loop counted it (setLooped)
	p.mu.Lock()
	srv := p.server
	p.mu.Unlock()
	_ = srv.ServeConn(tc)
}

// stopAccepting ends every loop's accepting and closes the listener.
func (lc *loopCore) stopAccepting() error {
	var err error
	lc.closeOnce.Do(func() {
		close(lc.closed)
		for _, l := range lc.loops {
			l.command(cmdStopAccept)
		}
		err = lc.ln.Close()
	})
	return err
}

// shutdown closes the loops' idle client connections and waits until
// their requests in flight are answered or ctx ends. Every response from
// the drain's start on carries "Connection: close" (Proxy.draining).
func (lc *loopCore) shutdown(ctx context.Context) {
	for _, l := range lc.loops {
		l.command(cmdDrain)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for lc.open() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// closeAll stops the loops and closes every connection they hold.
func (lc *loopCore) closeAll() {
	_ = lc.stopAccepting()
	for _, l := range lc.loops {
		l.command(cmdStop)
	}
	lc.wg.Wait()
	s := lc.p.LoopStats()
	lc.p.log.Info("loop core stopped", "requests_served", s.Served, "connections_handed_over", s.Handed)
}

// open is how many client connections the loops hold.
func (lc *loopCore) open() int {
	n := 0
	for _, l := range lc.loops {
		n += int(l.nconns.Load())
	}
	return n
}

// LoopStats counts what the loop core did: requests it answered itself,
// and connections it handed to the goroutine core. Zero under the
// goroutine core.
type LoopStats struct {
	Served, Handed uint64
	// ParsedHeads counts the upstream response heads the loop had
	// fasthttp parse; the simple ones (proxy/respsimple.go) are decided
	// from their bytes alone.
	ParsedHeads uint64
}

// LoopStats returns the loop core's counts.
func (p *Proxy) LoopStats() LoopStats {
	p.mu.Lock()
	lc := p.loops
	p.mu.Unlock()
	var s LoopStats
	if lc == nil {
		return s
	}
	for _, l := range lc.loops {
		s.Served += l.served.Load()
		s.Handed += l.handed.Load()
		s.ParsedHeads += l.parsed.Load()
	}
	return s
}

// loopListener is the goroutine core's listener under the loop core: it
// yields the connections the loops hand over.
type loopListener struct{ lc *loopCore }

func (l *loopListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.lc.handed:
		return c, nil
	case <-l.lc.closed:
		return nil, net.ErrClosed
	}
}

func (l *loopListener) Close() error   { return l.lc.stopAccepting() }
func (l *loopListener) Addr() net.Addr { return l.lc.ln.Addr() }

// prefixConn is a client connection handed over by a loop: the bytes the
// loop had read and not served come first (replayConn, as the HTTP/2
// sorting replays its peek). It embeds the socket as a net.Conn, which
// hides its syscall.Conn (the front door's raw fill would read past the
// prefix); replayConn's NetConn exposes it for abortConn, and the methods
// below for the refusal's half-close and to splice response bodies.
type prefixConn struct {
	replayConn
	tcp *net.TCPConn
}

func newPrefixConn(tcp *net.TCPConn, pre []byte) *prefixConn {
	return &prefixConn{replayConn: replayConn{Conn: tcp, pending: pre}, tcp: tcp}
}

// CloseWrite half-closes the socket: the front door's refusal lingers on
// it (frontdoor.Conn.answer), so a client still sending reads the answer
// and a FIN, not a reset.
func (c *prefixConn) CloseWrite() error { return c.tcp.CloseWrite() }

// ReadFrom lets a response body be spliced to the socket (splice.go).
func (c *prefixConn) ReadFrom(r io.Reader) (int64, error) { return c.tcp.ReadFrom(r) }

// connFromFD makes fd (a connected socket the caller gives up) a
// *net.TCPConn.
func connFromFD(fd int) (*net.TCPConn, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("loop core: hand-off: %w", err)
	}
	f := fileFromFD(fd)
	c, err := net.FileConn(f) // a duplicate, in the runtime's poller
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("loop core: hand-off: %w", err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, errors.New("loop core: hand-off: not a TCP socket")
	}
	return tc, nil
}
