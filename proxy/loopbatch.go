//go:build linux

package proxy

import (
	"time"

	"golang.org/x/sys/unix"
)

// A loop's writes wait for the end of the batch of events they were made
// in: first the request heads for the upstreams, then the responses for
// the clients, then the next epoll_wait. HAProxy's loop has that shape (its
// receives run in the poller's pass, its sends when the tasks have run),
// and measured beside it (bench/README.md, "Loop core CPU, session 6") the
// loop core's CPU per request fell 3–7 % against writing each at once: on
// loopback a write runs the receiver's TCP input and wakes it, and the
// peers woken by one burst of writes take the rest of the burst while
// awake. A write waits within one batch only (microseconds); responses
// larger than batchMax, and the rest of one the socket did not take, are
// written as before, at once and on writability.

// batchMax is the largest response write that waits for the end of its
// batch: the waiting bytes are copied into the connection's out buffer,
// which an idle connection keeps, so only small writes (a whole response
// of the common size) wait.
const batchMax = 4 << 10

// queued is a connection with a write waiting for the end of the batch; gen
// tells it from a connection since recycled.
type queued struct {
	c   *lconn
	gen uint64
}

// queueHead makes c's request head to u wait for the end of the batch.
func (l *loop) queueHead(c *lconn, u *lup) {
	u.queued = true
	l.heads = append(l.heads, queued{c, c.gen})
}

// queueOut appends b to what waits for c's client for the end of the
// batch; last says the response ends with b.
func (l *loop) queueOut(c *lconn, b []byte, last bool) {
	c.out = append(c.out, b...)
	c.rs.lastOut = last
	if !c.queued {
		c.queued = true
		l.outs = append(l.outs, queued{c, c.gen})
	}
}

// flushBatch writes what waits: the heads, then the responses. A response
// written whole ends its request, which may start the connection's next
// (pipelined) one and queue more; the loop runs until nothing waits.
func (l *loop) flushBatch() {
	l.ended = time.Time{} // the responses written here end now, not when the batch began
	for len(l.heads) > 0 || len(l.outs) > 0 {
		for i := 0; i < len(l.heads); i++ {
			q := l.heads[i]
			if c := q.c; c.gen == q.gen && c.fd >= 0 && c.u != nil && c.u.queued {
				l.sendHead(c, c.u)
			}
		}
		clear(l.heads)
		l.heads = l.heads[:0]
		for i := 0; i < len(l.outs); i++ {
			q := l.outs[i]
			if c := q.c; c.gen == q.gen && c.fd >= 0 && c.queued {
				c.queued = false
				l.writeOut(c)
			}
		}
		clear(l.outs)
		l.outs = l.outs[:0]
	}
}

// writeOut writes c.out, which waited for the end of the batch: what the
// socket does not take waits for writability (toClient's rule); a response
// written whole ends its request.
func (l *loop) writeOut(c *lconn) {
	n, err := rawSend(c.fd, c.out)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.clientFailed(c)
		return
	}
	n = max(n, 0)
	if n < len(c.out) {
		c.out = c.out[:copy(c.out, c.out[n:])]
		l.awaitWritable(c)
		return
	}
	c.out = c.out[:0]
	if c.rs.lastOut {
		c.rs.lastOut = false
		l.responseOut(c)
		return
	}
	if c.u != nil && c.u.ev == 0 {
		l.upInterest(c.u, evIn) // upstreamEvent stops reading while out is not empty
	}
}

// sendQueued writes what waits for c's client now, once and whatever the
// socket takes: before a reset that ends the connection, as the goroutine
// core's server has written it by then.
func (l *loop) sendQueued(c *lconn) {
	if c.queued {
		c.queued = false
		_, _ = rawSend(c.fd, c.out)
		c.out = c.out[:0]
	}
}
