//go:build linux

package proxy

// A client connection's read buffer (lconn.in) starts at inStart, which
// most request heads fit, and grows, doubling, up to maxHead for a request
// whose head and body do not fit (loopbody.go serves bodies up to 8 KiB;
// a node's maxHead is ~40 KiB). A connection that is idle again — its
// request done and fewer than inStart bytes of the next buffered — gives a
// grown buffer back (requestDone), so what an idle keep-alive connection
// holds does not depend on the largest request it ever carried; before,
// one large request kept its buffer until the connection closed.
//
// The loop keeps a few of the grown buffers it took back (spareIn), and
// the small ones they replaced (smallIn), for the next connection that
// grows: a client that sends large requests one after the other costs no
// allocation per request (TestLoopAllocs), and what the loop holds for
// them is bounded per loop (maxSpareIn of each), not per connection.

// maxSpareIn bounds each of a loop's lists of spare read buffers.
const maxSpareIn = 8

// growIn makes room in c's full read buffer: twice its size, at most
// maxHead, from the loop's spares when one fits.
func (l *loop) growIn(c *lconn) {
	maxHead := l.maxHead()
	want := min(2*cap(c.in), maxHead)
	var b []byte
	for i := len(l.spareIn) - 1; i >= 0; i-- {
		if s := l.spareIn[i]; cap(s) >= want && cap(s) <= maxHead {
			last := len(l.spareIn) - 1
			b, l.spareIn[i], l.spareIn[last] = s, l.spareIn[last], nil
			l.spareIn = l.spareIn[:last]
			break
		}
	}
	if b == nil {
		b = make([]byte, 0, want)
	}
	old := c.in
	c.in = append(b[:0], old...)
	l.spareOld(old)
}

// shrinkIn gives back c's grown read buffer when what it holds (the next
// request's first bytes, if any) fits a small one.
func (l *loop) shrinkIn(c *lconn) {
	if cap(c.in) <= inStart || len(c.in) > inStart {
		return
	}
	old := c.in
	c.in = append(l.smallBuf(), old...)
	l.spareOld(old)
}

// smallBuf is an empty read buffer of inStart bytes: a spare, or a new one.
func (l *loop) smallBuf() []byte {
	if n := len(l.smallIn); n > 0 {
		b := l.smallIn[n-1]
		l.smallIn[n-1] = nil
		l.smallIn = l.smallIn[:n-1]
		return b
	}
	return make([]byte, 0, inStart)
}

// spareOld keeps a read buffer a connection let go of for the next one
// that needs its size, while the loop keeps fewer than maxSpareIn of them;
// the rest go to the garbage collector.
func (l *loop) spareOld(b []byte) {
	switch {
	case cap(b) == inStart:
		if len(l.smallIn) < maxSpareIn {
			l.smallIn = append(l.smallIn, b[:0])
		}
	case cap(b) > inStart:
		if len(l.spareIn) < maxSpareIn {
			l.spareIn = append(l.spareIn, b[:0])
		}
	}
}
