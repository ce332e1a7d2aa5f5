package bench

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"
)

// worker is one sending goroutine with its own connection. Everything it
// touches per request is reused, so the send loop does not allocate in
// steady state.
type worker struct {
	r        *runner
	id       int
	ex       exchanger
	guard    connGuard
	keys     *keyChooser
	shard    *shard
	timer    *time.Timer
	sample   sample
	reused   bool          // the connection has answered before (see do)
	lastDone time.Duration // when the last response arrived
}

func newWorker(r *runner, id int) *worker {
	w := &worker{
		r:     r,
		id:    id,
		keys:  newKeyChooser(r.cfg, id),
		shard: r.shards[id%len(r.shards)],
		timer: time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	dial := w.guard.dialer(r.cfg.Timeout)
	if r.target.tls {
		w.ex = newFastConn(r.target, r.cfg, dial)
	} else {
		w.ex = newH1Conn(r.target, r.cfg, dial)
	}
	return w
}

// loop runs the worker's schedule and closes its connection.
func (w *worker) loop(ctx context.Context) {
	defer w.ex.release()
	if w.r.open {
		w.openLoop(ctx)
	} else {
		w.closedLoop()
	}
}

// openLoop claims slots on the shared schedule (slot i is due at i×period)
// and sends each at its due time, or at once when it is already late. A late
// request's latency is charged from its due time, so a stall of the target
// is charged to every request that should have been sent during it, as wrk2
// does; the schedule never waits for the target.
func (w *worker) openLoop(ctx context.Context) {
	r := w.r
	now := r.since()
	for !r.stop.Load() {
		slot := r.nextSlot.Add(1) - 1
		intended := time.Duration(float64(slot) * r.period)
		if r.end > 0 && intended >= r.end {
			return
		}
		if intended > now {
			// Ahead of schedule: the connection is idle, so any lateness
			// now is the timer's wake-up slack (often hundreds of µs), the
			// generator's noise and not the target's delay. Measure from
			// the actual send.
			if !w.sleep(ctx, intended-now) {
				return
			}
			now = r.since()
			now = w.do(intended, now, now)
			continue
		}
		// Behind schedule: the connection was busy waiting for the target,
		// so the wait is charged from the intended time. now is the
		// previous response's time: one clock read per request.
		now = w.do(intended, intended, now)
	}
}

// closedLoop sends the next request as soon as the previous answered.
func (w *worker) closedLoop() {
	r := w.r
	now := r.since()
	for !r.stop.Load() && (r.end == 0 || now < r.end) {
		now = w.do(now, now, now)
	}
}

// sleep waits d or until ctx is cancelled; it reports whether to go on.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

// do sends one request whose schedule slot was due at intended, whose
// corrected latency is measured from from, and which actually went out at
// sent; it records the request and returns the time the response arrived.
func (w *worker) do(intended, from, sent time.Duration) time.Duration {
	r := w.r
	var key []byte
	if w.keys != nil {
		key = w.keys.next()
	}
	w.guard.begin(sent)
	idle := sent != w.lastDone // the worker slept: see exchanger.exchange
	err := w.ex.exchange(key, idle)
	if err != nil && w.reused && w.ex.stale(err) && idempotentMethod(r.cfg.Method) {
		// A keep-alive connection the server closed while it sat idle,
		// found dead before a single response byte: every real client
		// (browsers, Go's net/http, fasthttp's default) resends an
		// idempotent request once on a new connection (RFC 9112 §9.3.1),
		// so the generator does too, and counts it.
		r.staleRetries.Add(1)
		w.ex.closeConn()
		err = w.ex.exchange(key, true)
	}
	w.reused = err == nil && w.ex.keepAlive()
	done := r.since()
	w.lastDone = done
	if w.guard.end() {
		// The watchdog set a past deadline on this connection; even if the
		// response won the race, the connection must not be reused.
		w.ex.closeConn()
		w.reused = false
		if err != nil {
			err = fasthttp.ErrTimeout
		}
	}

	x := &w.sample
	x.corrected = int64(done - from)
	x.uncorrected = int64(done - sent)
	x.otherErr = nil
	if err != nil {
		x.status, x.cell, x.cgErr = 0, nil, nil
		x.cause = transportCause(err)
		if x.cause == CauseOther {
			x.otherErr = err
		}
	} else {
		x.cause = ""
		x.status, x.cell, x.cgErr = w.ex.response()
	}
	warm := intended < r.measureStart
	if !warm {
		w.shard.record(x)
	}
	if r.hooks.OnResponse != nil {
		r.hooks.OnResponse(Observation{
			Worker:   w.id,
			Key:      key,
			Cell:     x.cell,
			Status:   x.status,
			Err:      err,
			Failed:   err != nil || len(x.cgErr) > 0 || isErrorStatus(x.status),
			Intended: intended,
			Latency:  time.Duration(x.corrected),
			Warmup:   warm,
		})
	}
	return done
}

// idempotentMethod reports whether a request may be sent twice
// (RFC 9110 §9.2.2); "" is GET.
func idempotentMethod(m string) bool {
	switch m {
	case "", "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
