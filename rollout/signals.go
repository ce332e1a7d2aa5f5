package rollout

import (
	"fmt"
	"math"
)

// signalKey names one external signal value; cell "" is a cluster-wide value.
type signalKey struct{ name, cell string }

// ReportSignal records an external signal (model quality, drift…) posted to
// /v1/signals; cell "" applies to every cell. The latest value counts. Plans
// whose signal gates it breaches are reverted on the next tick. A gate with
// no value reported yet does not hold the plan.
func (c *Controller) ReportSignal(name, cell string, value float64) error {
	if name == "" || math.IsNaN(value) || math.IsInf(value, 0) {
		return fmt.Errorf("signal %q = %g: name and a finite value are required: %w", name, value, ErrInvalid)
	}
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	c.signals[signalKey{name, cell}] = value
	return nil
}

// gateSignals turns v into a failing verdict when a signal gate of d's plan is breached.
func (c *Controller) gateSignals(d *Document, v Verdict) Verdict {
	if len(d.Plan.Signals) == 0 || d.Step < 0 {
		return v
	}
	c.sigMu.RLock()
	defer c.sigMu.RUnlock()
	for _, g := range d.Plan.Signals {
		cells := d.Plan.Targets
		if g.Cell != "" {
			cells = []string{g.Cell}
		}
		for _, cell := range cells {
			val, ok := c.signals[signalKey{g.Name, cell}]
			if !ok {
				val, ok = c.signals[signalKey{g.Name, ""}]
			}
			if ok && breached(g, val) {
				v.State, v.Rule = StateFailing, "signal:"+g.Name
				v.Reason = fmt.Sprintf("signal %s on %s is %g, bad %s %g", g.Name, cell, val, badWhen(g), g.Threshold)
				return v
			}
		}
	}
	return v
}

func badWhen(g SignalGate) string {
	if g.BadWhen == BadBelow {
		return BadBelow
	}
	return BadAbove
}

func breached(g SignalGate, val float64) bool {
	if badWhen(g) == BadBelow {
		return val < g.Threshold
	}
	return val > g.Threshold
}
