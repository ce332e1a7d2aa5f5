//go:build linux

package proxy

import (
	"sync"
	"time"
)

// A loop's state is its goroutine's alone (loop.go). Tests that look at it
// — what a connection's read buffer holds between requests, say — ask the
// loop to run their look between its events, through its command word, as
// probes and lookups bring their results back.

// inspectLoops runs f on each loop's goroutine, between events, and
// reports whether every loop ran it within timeout (a loop that stopped
// does not).
func (p *Proxy) inspectLoops(f func(*loop), timeout time.Duration) bool {
	p.mu.Lock()
	lc := p.loops
	p.mu.Unlock()
	if lc == nil {
		return false
	}
	var wg sync.WaitGroup
	for _, l := range lc.loops {
		wg.Add(1)
		queueFor(l, &l.inspects, func() { defer wg.Done(); f(l) }, cmdInspect)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// inspectsDone runs the looks inspectLoops asked for.
func (l *loop) inspectsDone() {
	for _, f := range takeQueued(l, &l.inspects) {
		f()
	}
}
