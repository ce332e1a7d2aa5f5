//go:build linux

package proxy

import "time"

// A loop reads the clock once when a batch of events comes in (tick) and
// at most once more when a response of the batch is out (endClock), not
// for every request: the goroutine core reads it for each response head
// (ttfb) and each end (finish), and at two reads per request the clock
// was ~1 % of the loop's CPU (bench/README.md, "Loop core CPU, session 6").
// A response head's time is the batch's arrival time, which is when its
// bytes were there to read; an end is when the first response of its
// flush (or of its batch, for one written at once) went out, which a few
// microseconds of writes may precede — what HAProxy's loop does with its
// once-per-pass clock.

// tick reads the clock for a new batch of events.
func (l *loop) tick() {
	l.clock = time.Now()
	l.now = l.clock.UnixNano()
	l.ended = time.Time{}
}

// retick reads the clock again within a batch for a connection accept has
// just taken: accept takes every connection waiting, including ones that
// arrived after the batch's clock was read, and read_timeout runs from the
// accept. With the batch's clock, a silent connection was cut up to a
// batch's length early (TestSlowClientsAreCut saw 499.96 ms for 500 ms,
// timed from before the client's dial). The batch's response end (ended)
// is kept.
func (l *loop) retick() {
	l.clock = time.Now()
	l.now = l.clock.UnixNano()
}

// startClock is a request's start: the batch's arrival, when its bytes
// were there to read (the clock is read before the first batch; a test
// driving the loop without one reads it here).
func (l *loop) startClock() time.Time {
	if l.clock.IsZero() {
		return time.Now()
	}
	return l.clock
}

// headClock is a response head's arrival time: the batch's, never before
// the request's start (a request started in this batch read the clock
// after it came in).
func (l *loop) headClock(start time.Time) time.Time {
	if l.clock.Before(start) {
		return start
	}
	return l.clock
}

// endClock is when a response ended: read once per flush (flushBatch
// clears it) or per batch for responses written at once; never before the
// request's start.
func (l *loop) endClock(start time.Time) time.Time {
	if l.ended.IsZero() {
		l.ended = time.Now()
	}
	if l.ended.Before(start) {
		return start
	}
	return l.ended
}
