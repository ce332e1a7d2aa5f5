package bench

import (
	"errors"
	"context"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// worker is one sending goroutine with its own connection's worth of
// request state. Everything it touches per request is reused, so the send
// loop does not allocate in steady state.
type worker struct {
	r      *runner
	id     int
	hc     *fasthttp.HostClient
	guard  connGuard
	req    *fasthttp.Request
	resp   *fasthttp.Response
	keys   *keyChooser
	shard  *shard
	timer  *time.Timer
	sample sample
	reused bool // the connection has answered before (see do)
}

func newWorker(r *runner, id int) *worker {
	w := &worker{
		r:     r,
		id:    id,
		req:   fasthttp.AcquireRequest(),
		resp:  fasthttp.AcquireResponse(),
		keys:  newKeyChooser(r.cfg, id),
		shard: r.shards[id%len(r.shards)],
		timer: time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	w.hc = newClient(r.target, w.guard.dialer(r.cfg.Timeout), r.cfg.Insecure)
	w.req.SetRequestURI(r.target.uri)
	if r.cfg.Method != "" {
		w.req.Header.SetMethod(r.cfg.Method)
	}
	for k, v := range r.cfg.Headers {
		if strings.EqualFold(k, "Host") {
			w.req.Header.SetHost(v)
			continue
		}
		w.req.Header.Set(k, v)
	}
	return w
}

// loop runs the worker's schedule and releases its request state.
func (w *worker) loop(ctx context.Context) {
	defer func() {
		w.hc.CloseIdleConnections()
		fasthttp.ReleaseRequest(w.req)
		fasthttp.ReleaseResponse(w.resp)
	}()
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
		w.req.Header.SetBytesV(r.cfg.KeyHeader, key)
	}
	w.guard.begin(sent)
	err := w.hc.Do(w.req, w.resp)
	if err != nil && w.reused && errors.Is(err, fasthttp.ErrConnectionClosed) && idempotentMethod(r.cfg.Method) {
		// A keep-alive connection the server closed while it sat idle,
		// found dead before a single response byte: every real client
		// (browsers, Go's net/http, fasthttp's default) resends an
		// idempotent request once on a new connection (RFC 9112 §9.3.1),
		// so the generator does too, and counts it.
		r.staleRetries.Add(1)
		err = w.hc.Do(w.req, w.resp)
	}
	w.reused = err == nil && !w.resp.ConnectionClose()
	done := r.since()
	if w.guard.end() {
		// The watchdog set a past deadline on this connection; even if the
		// response won the race, the connection must not be reused.
		w.hc.CloseIdleConnections()
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
		x.status = w.resp.StatusCode()
		x.cell = w.resp.Header.Peek(HeaderCell)
		x.cgErr = w.resp.Header.Peek(HeaderError)
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
