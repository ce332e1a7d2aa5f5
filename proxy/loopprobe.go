//go:build linux

package proxy

// A failed attempt is settled by reqState.attemptFailed, whose passive
// health (noteFailure) confirms a connection reset before any response
// byte with a dial of the endpoint (unreachable) when ejection is on: a
// blocking dial, bounded by the connect timeout. A loop must not block, so
// such a failure is settled on a goroutine of its own while the loop goes
// on serving; the request waits (probing), and the verdict — retry, or the
// round's end — comes back through the loop's command word (cmdProbes).

// probeResult is a failed attempt settled off the loop.
type probeResult struct {
	c     *lconn
	gen   uint64
	ep    *endpoint
	cs    cause
	retry bool
}

// probe settles the failed attempt on ep off the loop.
func (l *loop) probe(c *lconn, ep *endpoint, cs cause, sent, lost bool) {
	c.probing = true
	st, attempt, gen := c.st, c.attempt, c.gen
	method := append([]byte(nil), c.ctx.Method()...) // the connection may be recycled meanwhile
	go func() {
		retry := st.attemptFailed(ep, cs, attempt, sent, lost, method)
		queueFor(l, &l.probes, probeResult{c: c, gen: gen, ep: ep, cs: cs, retry: retry}, cmdProbes)
	}()
}

// probesDone carries on with the requests whose failed attempts were
// settled: another attempt, or the end of the round (attemptFailed).
func (l *loop) probesDone() {
	for _, r := range takeQueued(l, &l.probes) {
		c := r.c
		if c.gen != r.gen || !c.probing || c.st == nil {
			continue // the connection closed meanwhile
		}
		c.probing = false
		if r.retry {
			c.tried = r.ep
			c.attempt++
			l.attempt(c)
			continue
		}
		l.roundEnd(c, r.cs)
	}
}
