//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one event loop of the loop core: an epoll set over its duplicate
// of the listening socket, its client connections and their upstream
// connections. Only its own goroutine touches its state; other goroutines
// talk to it through command (an atomic word and an eventfd). Every socket
// is non-blocking and level-triggered, so each readiness event costs one
// read or write and no read is made that is expected to fail with EAGAIN.
type loop struct {
	lc *loopCore
	p  *Proxy

	ep    int
	lfd   int      // the listener's duplicate; -1 once accepting stopped
	lfile *os.File // owns lfd
	evfd  int      // eventfd: command wakes the loop; guarded by cmdMu against release
	cmdMu sync.Mutex
	cmds  atomic.Uint32
	// probes are the verdicts of failed attempts settled off the loop
	// (loopprobe.go), guarded by probeMu.
	probeMu sync.Mutex
	probes  []probeResult
	// resolved are the host-name lookups done off the loop
	// (loopresolve.go), guarded by probeMu.
	resolved []resolveResult
	// inspects are tests' looks at the loop's state (loopinspect.go),
	// guarded by probeMu.
	inspects []func()
	events   [256]unix.EpollEvent

	// By descriptor: the client connection or the upstream connection it
	// is (one of the two is nil).
	cl []*lconn
	up []*lup

	nconns atomic.Int32 // client connections held (lconn), read by Shutdown
	// served counts requests the loop answered itself, handed the
	// connections it gave the goroutine core (LoopStats).
	served atomic.Uint64
	handed atomic.Uint64
	// parsed counts final upstream heads fasthttp parsed: those that were
	// not simple (respsimple.go).
	parsed atomic.Uint64
	nidle  int // idle upstream connections in the pools
	pools  map[*endpoint]*lpool
	free   []*lconn // closed connections' state, reused
	// spareIn and smallIn are read buffers connections gave back, for the
	// next that grows (loopbuf.go).
	spareIn, smallIn [][]byte
	// heads and outs are the writes waiting for the end of the batch
	// (loopbatch.go).
	heads, outs []queued

	draining bool
	now      int64     // UnixNano, read once per batch of events
	clock    time.Time // the same reading, with its monotonic part (loopclock.go)
	ended    time.Time // loopclock.go: zero until a response ends in this phase
	swept    int64     // when sweep last ran
	yielded  int64     // when the loop last yielded its P

	// Scratch for parsing: a head is parsed from a byte slice through a
	// bufio.Reader, the way fasthttp parses it from a connection.
	src bytes.Reader
	br  *bufio.Reader
	// states are released reqStates of this loop's requests
	// (acquireState), reused before the proxy's pool.
	states []*reqState
	// slowHead parses every head with fasthttp's parser, never
	// simpleHead's scan (loopreqhead.go): tests compare the two.
	slowHead bool
	// wb serialises a response fasthttp's way (Response.Write) into sink.
	sink sinkWriter
	wb   *bufio.Writer
	hb   []byte // fasthttp's head, for its framing (loopresp.go)
	eb   []byte // an answer of the proxy's own (writeCtx)

	// refusals are the connections over max_conns the loop lingers on
	// after their 503 (looprefuse.go), by descriptor; nil until one.
	refusals map[int]*refusing
}

// Commands (loop.command).
const (
	cmdStopAccept = 1 << iota
	cmdDrain
	cmdStop
	cmdProbes   // a probe's verdict is in l.probes
	cmdResolved // a lookup's result is in l.resolved
	cmdInspect  // a test's look at the loop is in l.inspects
)

const evIn = unix.EPOLLIN | unix.EPOLLRDHUP

// sweepEvery is how often a loop checks its deadlines: timeouts fire up
// to this late.
const sweepEvery = 50 * time.Millisecond

// yieldEvery is how long a busy loop runs before it yields its P.
const yieldEvery = 200 * time.Microsecond

func newLoop(lc *loopCore) (*loop, error) {
	f, err := lc.ln.File() // a duplicate, blocking; the loop owns it
	if err != nil {
		return nil, fmt.Errorf("listener descriptor: %w", err)
	}
	l := &loop{lc: lc, p: lc.p, lfile: f, lfd: int(f.Fd()), ep: -1, evfd: -1, pools: map[*endpoint]*lpool{}}
	if err := unix.SetNonblock(l.lfd, true); err != nil {
		l.release()
		return nil, fmt.Errorf("listener non-blocking: %w", err)
	}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		l.release()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.release()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// EPOLLEXCLUSIVE: a new connection wakes one loop, not all of them.
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.lfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.lfd)}); err != nil {
		l.release()
		return nil, fmt.Errorf("epoll add listener: %w", err)
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.evfd)}); err != nil {
		l.release()
		return nil, fmt.Errorf("epoll add eventfd: %w", err)
	}
	l.br = bufio.NewReaderSize(&l.src, max(lc.p.opts.ReadBufferSize, 4096))
	l.wb = bufio.NewWriterSize(&l.sink, 4096)
	return l, nil
}

// release closes what newLoop opened.
func (l *loop) release() {
	if l.lfile != nil {
		l.lfile.Close()
		l.lfile, l.lfd = nil, -1
	}
	l.cmdMu.Lock()
	if l.evfd >= 0 {
		unix.Close(l.evfd)
		l.evfd = -1
	}
	l.cmdMu.Unlock()
	if l.ep >= 0 {
		unix.Close(l.ep)
		l.ep = -1
	}
}

// command asks the loop to act (cmdStopAccept, cmdDrain, cmdStop); safe
// from any goroutine.
func (l *loop) command(c uint32) {
	l.cmds.Or(c)
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	if l.evfd >= 0 { // a loop that has stopped has nothing to do
		_, _ = unix.Write(l.evfd, one[:])
	}
}

// queueFor puts v on q, a queue of results other goroutines hand the loop
// (probes, lookups, tests' looks; guarded by probeMu), and wakes the loop
// with cmd.
func queueFor[T any](l *loop, q *[]T, v T, cmd uint32) {
	l.probeMu.Lock()
	*q = append(*q, v)
	l.probeMu.Unlock()
	l.command(cmd)
}

// takeQueued empties q, a queue queueFor fills, and returns what it held.
func takeQueued[T any](l *loop, q *[]T) []T {
	l.probeMu.Lock()
	defer l.probeMu.Unlock()
	out := *q
	*q = nil
	return out
}

// run serves until cmdStop. It does not lock its thread: measured
// (bench/README.md, "Loop core"), a locked loop was no cheaper and no
// faster, and the prototype's had the worst p99 at 1000 connections.
func (l *loop) run() {
	defer l.lc.wg.Done()
	if l.lc.lock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	defer l.release()
	l.tick()
	l.swept = l.now
	for {
		n, err := l.wait()
		if err != nil && err != unix.EINTR {
			l.p.log.Error("loop core: epoll_wait failed; closing the loop's connections", "err", err)
			l.closeAll()
			return
		}
		l.tick()
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.evfd:
				if l.commands() {
					return
				}
			case fd == l.lfd:
				l.accept()
			case fd < len(l.cl) && l.cl[fd] != nil:
				l.clientEvent(l.cl[fd], ev.Events)
			case fd < len(l.up) && l.up[fd] != nil:
				l.upstreamEvent(l.up[fd], ev.Events)
			case l.refusals[fd] != nil:
				l.refusalEvent(l.refusals[fd])
			}
		}
		l.flushBatch()
		if l.now-l.yielded >= int64(yieldEvery) {
			// Busy: the raw wait never blocked, and the runtime cannot
			// preempt a goroutine in a raw system call. Let the rest of
			// the process (timers, admin, gossip, handed-over
			// connections) run on this P.
			runtime.Gosched()
			l.yielded = l.now
		}
		if l.now-l.swept >= int64(sweepEvery) {
			l.sweep()
			l.swept = l.now
			l.flushBatch() // a read timeout's 408
		}
	}
}

// commands runs what command asked for; it reports whether to stop.
func (l *loop) commands() bool {
	var b [8]byte
	_, _ = rawRead(l.evfd, b[:])
	c := l.cmds.Swap(0)
	if c&cmdStopAccept != 0 && l.lfd >= 0 {
		_ = l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0)
		l.lfile.Close() // the listener itself is the core's to close
		l.lfile, l.lfd = nil, -1
	}
	if c&cmdDrain != 0 {
		l.draining = true
		l.closeIdle()
	}
	if c&cmdProbes != 0 {
		l.probesDone()
	}
	if c&cmdResolved != 0 {
		l.resolvedDone()
	}
	if c&cmdInspect != 0 {
		l.inspectsDone()
	}
	if c&cmdStop != 0 {
		l.closeAll()
		return true
	}
	return false
}

// accept takes new connections, as many as are waiting (up to a batch).
func (l *loop) accept() {
	for i := 0; i < 64 && l.lfd >= 0; i++ {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR && err != unix.ECONNABORTED {
				l.acceptFailed(err)
			}
			return
		}
		l.retick()
		if since := l.p.accept.failingSince.Swap(0); since != 0 {
			l.p.log.Info("accepting again", "failing_for", time.Since(time.Unix(0, since)).Round(time.Millisecond))
		}
		if !l.p.conns.admitLoop() {
			l.refuse(fd)
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := l.newConn(fd, sa)
		l.setClient(fd, c)
		l.nconns.Add(1)
		c.ev = evIn
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, evIn); err != nil {
			l.closeConn(c)
		}
	}
}

// acceptFailed counts an accept error as the goroutine core's listener
// does (accept.go); descriptor exhaustion ends by itself as connections
// close, so the loop simply tries again at the next readiness.
func (l *loop) acceptFailed(err error) {
	l.p.accept.errors.Add(1)
	l.p.accept.failingSince.CompareAndSwap(0, time.Now().UnixNano())
	l.p.log.Warn("accept failed", "err", err)
}

func (l *loop) setClient(fd int, c *lconn) {
	for fd >= len(l.cl) {
		l.cl = append(l.cl, nil)
	}
	l.cl[fd] = c
}

func (l *loop) setUp(fd int, u *lup) {
	for fd >= len(l.up) {
		l.up = append(l.up, nil)
	}
	l.up[fd] = u
}

// sweep enforces the timeouts: each connection's deadline, and the pools'
// idle limit.
func (l *loop) sweep() {
	if len(l.refusals) > 0 {
		l.sweepRefusals(false)
	}
	for _, c := range l.cl {
		if c != nil && c.deadline != 0 && l.now >= c.deadline {
			l.expired(c)
		}
	}
	for _, u := range l.up {
		switch {
		case u == nil:
		case u.c != nil:
			if u.deadline != 0 && l.now >= u.deadline {
				l.upExpired(u)
			}
		case !u.connecting && l.now >= u.idleUntil:
			l.closeUp(u)
		}
	}
}

// closeIdle closes the client connections with no request under way (a
// drain; the goroutine core's server does the same to its idle ones).
func (l *loop) closeIdle() {
	for _, c := range l.cl {
		if c != nil && c.st == nil && len(c.in) == 0 && len(c.out) == 0 {
			l.closeConn(c)
		}
	}
}

// closeAll closes every connection the loop holds.
func (l *loop) closeAll() {
	for _, c := range l.cl {
		if c != nil {
			if c.st != nil {
				l.abandon(c)
			}
			l.closeConn(c)
		}
	}
	for _, u := range l.up {
		if u != nil {
			l.closeUp(u)
		}
	}
	l.sweepRefusals(true)
}

// fileFromFD wraps fd in an *os.File that owns it.
func fileFromFD(fd int) *os.File { return os.NewFile(uintptr(fd), "") }

// sockAddr is a connection's address as net.Addr, for fasthttp's
// RemoteAddr; made once per connection.
func sockAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// sinkWriter collects what a bufio.Writer flushes.
type sinkWriter struct{ b []byte }

func (s *sinkWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}
