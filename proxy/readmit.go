package proxy

import (
	"time"
)

// Readmission. An endpoint taken out by connection evidence (refused or
// timed-out connects, a reset confirmed by a fresh dial) is gone; while its
// cell is down nobody routes to it, so no request would notice it is back
// before its ejection runs out — eject_backoff doubled per ejection, up to
// 30 s: one outage of 4 s kept its users away 24 s. The issue asks that
// users return "when the cell is up again", so the node itself dials a dead
// endpoint every probeEvery (eject_backoff, at most 1 s) and readmits it on
// the first connect that succeeds, as a TCP health check would. An endpoint
// with an active check needs no probe: a passing check readmits it
// (healthcheck.go), as Envoy's successful_active_health_check_uneject_host
// does by default.

// maxProbeEvery bounds the interval of readmission probes: one dial per
// second per dead endpoint is cheap, and bounds how long users stay away
// from an endpoint that is back.
const maxProbeEvery = time.Second

// probeEvery is how often a dead endpoint is dialled.
func (p *Proxy) probeEvery() time.Duration {
	return min(time.Duration(p.health.backoff.Load()), maxProbeEvery)
}

// startReadmit starts e's readmission probe unless one runs, e has an
// active check, or the proxy is draining. It runs once per endpoint death
// (noteFailure), never on the request path's common case.
func (p *Proxy) startReadmit(e *endpoint) {
	p.mu.Lock() // Shutdown sets draining under mu, then waits for checkWG
	defer p.mu.Unlock()
	if e.check != nil || p.draining.Load() || !e.probing.CompareAndSwap(false, true) {
		return
	}
	p.checkWG.Add(1)
	go p.readmitLoop(e)
}

// readmitLoop dials e every probeEvery until a connect succeeds, e is
// readmitted otherwise (its ejection ran out and a request succeeded),
// removed by a reload, or the proxy shuts down.
func (p *Proxy) readmitLoop(e *endpoint) {
	defer p.checkWG.Done()
	defer func() {
		e.probing.Store(false)
		// A death recorded while this loop was deciding to end found
		// probing set and started nothing: probe it now.
		if e.dead.Load() && !e.removed.Load() && p.stopProbes.Err() == nil {
			p.startReadmit(e)
		}
	}()
	t := time.NewTimer(p.probeEvery())
	defer t.Stop()
	for {
		select {
		case <-p.stopProbes.Done():
			return
		case <-t.C:
		}
		if e.removed.Load() || !e.dead.Load() {
			return
		}
		if c, err := e.client.Dial(e.addr); err == nil {
			_ = c.Close()
			p.health.success(e)
			p.log.Info("endpoint readmitted: it accepts connections again", "endpoint", e.addr)
			p.refreshAll()
			return
		}
		t.Reset(p.probeEvery())
	}
}
