package rollout

import "time"

// Tuning is the part of Options a config reload may change on a running
// controller ([rollout] tick, degraded_ticks, max_step_per_tick). It is
// immutable and replaced whole, so a tick reads one consistent set without
// the lock.
type Tuning struct {
	// Tick is how often Run ticks; a change resets the running ticker.
	Tick time.Duration
	// DegradedTicks and MaxStepPerTick: see Options. A change applies from
	// the next verdict; a running streak of degraded verdicts is kept.
	DegradedTicks  int
	MaxStepPerTick float64
}

// tuningOf takes o's tunable fields (o has its defaults filled in).
func tuningOf(o Options) *Tuning {
	return &Tuning{Tick: o.Tick, DegradedTicks: o.DegradedTicks, MaxStepPerTick: o.MaxStepPerTick}
}

// Tuning returns the settings the controller runs with now.
func (c *Controller) Tuning() Tuning { return *c.tuning.Load() }

// SetTuning changes the settings of a running controller; zero fields take
// DefaultOptions' values, as in Options.
func (c *Controller) SetTuning(t Tuning) {
	o := Options{Tick: t.Tick, DegradedTicks: t.DegradedTicks, MaxStepPerTick: t.MaxStepPerTick}.withDefaults()
	old := c.tuning.Swap(tuningOf(o))
	if old.Tick != o.Tick {
		select {
		case c.retick <- struct{}{}:
		default: // a reset is already pending; run reads the newest tick
		}
	}
}
