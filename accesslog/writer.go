package accesslog

import (
	"crypto/hmac"
	"crypto/sha256"
)

// batchMax is how many bytes of lines the writer gathers before a write;
// it writes sooner whenever the queue is empty, so lines are never held
// back waiting for more.
const batchMax = 64 << 10

// run is the writer goroutine: it formats entries as they come, returns
// them to the pool at once, and writes a batch when the queue runs dry or
// the batch is full. After Close it writes what is left and returns.
func (l *Log) run() {
	defer close(l.done)
	var f formatter
	var key []byte
	buf := make([]byte, 0, batchMax+4096)
	for {
		var e *Entry
		select {
		case e = <-l.full:
		case <-l.stop:
			for {
				select {
				case e = <-l.full:
					buf, key = l.format(&f, key, buf, e)
					continue
				default:
				}
				break
			}
			l.flush(buf)
			return
		}
		buf, key = l.format(&f, key, buf, e)
		if len(buf) >= batchMax || len(l.full) == 0 {
			l.flush(buf)
			buf = buf[:0]
		}
	}
}

// format appends e's line to buf and recycles e. It rekeys the HMAC when
// the secret changed (key is the secret the formatter was keyed with).
func (l *Log) format(f *formatter, key, buf []byte, e *Entry) ([]byte, []byte) {
	s := l.set.Load()
	f.query = s.query
	if f.mac == nil || string(s.secret) != string(key) {
		f.mac, key = hmac.New(sha256.New, s.secret), s.secret
	}
	f.rollouts = nil
	if rs := l.rollouts.Load(); rs != nil {
		f.rollouts = *rs
	}
	buf = f.appendEntry(buf, e)
	e.trim()
	e.reset()
	l.free <- e
	return buf, key
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
