package accesslog

import (
	"crypto/hmac"
	"crypto/sha256"
	"time"
)

// batchMax is how many bytes of lines the writer gathers before a write.
const batchMax = 64 << 10

// gather is how long the writer lets lines collect after the first one
// before it formats and writes them. Waking the writer for every request
// (a goroutine switch and a write system call each) cost more CPU than
// the proxying itself; one wake-up and one write per gather period cost
// next to nothing per line, and lines reach the file at most this late.
// The pool must hold a gather period's lines: DefaultBuffer entries last
// 10 ms at 400 000 requests a second.
const gather = 10 * time.Millisecond

// writer is the writer goroutine's state.
type writer struct {
	l   *Log
	f   formatter
	key []byte // the secret f.mac was keyed with
	buf []byte
}

// run is the writer goroutine. Idle, it blocks until a line arrives; then
// it waits one gather period (or until Close), takes every line queued,
// formats them, returns their entries to the pool and writes them in
// batches of up to batchMax bytes. After Close it writes what is left.
func (l *Log) run() {
	defer close(l.done)
	w := &writer{l: l, buf: make([]byte, 0, batchMax+4096)}
	t := time.NewTimer(gather)
	t.Stop()
	for {
		select {
		case e := <-l.full:
			w.format(e)
		case <-l.stop:
			w.drain()
			return
		}
		t.Reset(gather)
		select {
		case <-t.C:
		case <-l.stop:
			t.Stop()
			w.drain()
			return
		}
		w.drain()
	}
}

// drain formats every queued line and writes them.
func (w *writer) drain() {
	for {
		select {
		case e := <-w.l.full:
			w.format(e)
			if len(w.buf) >= batchMax {
				w.l.flush(w.buf)
				w.buf = w.buf[:0]
			}
			continue
		default:
		}
		break
	}
	w.l.flush(w.buf)
	w.buf = w.buf[:0]
}

// format appends e's line to the batch and recycles e. It rekeys the HMAC
// when the secret changed.
func (w *writer) format(e *Entry) {
	l, f := w.l, &w.f
	s := l.set.Load()
	f.query = s.query
	if f.mac == nil || string(s.secret) != string(w.key) {
		f.mac, w.key = hmac.New(sha256.New, s.secret), s.secret
	}
	f.rollouts = nil
	if rs := l.rollouts.Load(); rs != nil {
		f.rollouts = *rs
	}
	w.buf = f.appendEntry(w.buf, e)
	e.trim()
	e.reset()
	l.free <- e
}

// flush writes buf to the destination. A failed write loses that batch;
// the failure is logged once until a write succeeds again. A write that
// never returns stalls only this goroutine: the data plane drops lines.
func (l *Log) flush(buf []byte) {
	d := l.dest.Load()
	if len(buf) == 0 || d == nil || d.w == nil {
		return
	}
	if _, err := d.w.Write(buf); err != nil {
		if !l.failed.Swap(true) {
			l.log.Error("access log write failed; lines lost until it recovers", "path", d.path, "err", err)
		}
		return
	}
	l.failed.Store(false)
	l.written.Add(countLines(buf))
}

func countLines(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
