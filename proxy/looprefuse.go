//go:build linux

package proxy

import (
	"golang.org/x/sys/unix"
)

// A connection over max_conns is answered on the loop that accepted it,
// as the goroutine core answers it (limits.go: 503 too-many-connections,
// the write side shut, what the client still sends read and dropped until
// it closes or refuseTimeout passes, so the close is a FIN after the 503
// rather than a reset before it). Handing it to a goroutine instead, as a
// net.Conn, cost a duplicate descriptor and a netpoller wake-up per
// refusal; the loop accepts without waiting on the netpoller, so under a
// stream of refused clients the goroutines' drains fell behind the loop's
// accepts, passed maxLingering, and the refusals after that were closed
// unanswered (a reset: TestDescriptorFlood). maxLingering still bounds
// them, shared with the goroutine core's.

// refusing is a refused connection the loop lingers on: its fd and when
// the linger ends.
type refusing struct {
	fd      int
	until   int64 // UnixNano
	drained int   // bytes read and dropped
}

// refuse answers fd, a connection over the cap.
func (l *loop) refuse(fd int) {
	t := &l.p.conns
	t.refused.Add(1)
	if t.lingering.Add(1) > t.maxLingering {
		t.lingering.Add(-1)
		_ = unix.Close(fd)
		return
	}
	// A new connection's send buffer takes the whole answer.
	if n, _ := rawSend(fd, tooManyConns); n != len(tooManyConns) ||
		unix.Shutdown(fd, unix.SHUT_WR) != nil ||
		l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP) != nil {
		l.endRefusal(fd)
		return
	}
	if l.refusals == nil {
		l.refusals = map[int]*refusing{}
	}
	l.refusals[fd] = &refusing{fd: fd, until: l.now + int64(refuseTimeout)}
}

// refusalEvent reads and drops what a refused client sends; its close,
// an error or refuseDrainBytes end the linger.
func (l *loop) refusalEvent(r *refusing) {
	var buf [4096]byte
	for {
		n, err := rawRecv(r.fd, buf[:])
		if n > 0 {
			if r.drained += n; r.drained < refuseDrainBytes {
				continue
			}
		}
		if n < 0 && (err == unix.EAGAIN || err == unix.EINTR) {
			return
		}
		l.endRefusal(r.fd) // EOF, an error, or enough read
		return
	}
}

// endRefusal closes a refused connection.
func (l *loop) endRefusal(fd int) {
	delete(l.refusals, fd)
	_ = unix.Close(fd) // also leaves the epoll set
	l.p.conns.lingering.Add(-1)
}

// sweepRefusals ends the lingers past refuseTimeout; all when all is set
// (the loop stops).
func (l *loop) sweepRefusals(all bool) {
	for fd, r := range l.refusals {
		if all || l.now >= r.until {
			l.endRefusal(fd)
		}
	}
}
