package slo

import "time"

// Alarms let the rollout controller act between its ticks without the hot
// path judging anything. The controller marks the target cells of its
// running rollouts as watched (Watch). When a watched cell records a bad
// response, or a request slower than its alarm latency (baseline's p99 with
// the latency test's margins), Record makes one non-blocking send on the
// registry's 1-buffered alarm channel: one atomic load per request, a
// channel send only on evidence, no allocation, no lock. The controller
// receives from Alarms, judges at once and reverts what is failing; many
// alarms in a burst coalesce into one pending wake-up.

// Alarm latency values in Cell.alarm besides a latency in nanoseconds.
const (
	alarmOff        = 0  // not watched: no alarms
	alarmErrorsOnly = -1 // watched, latency alarm not known yet (no baseline p99)
)

// Alarms returns the channel that receives (coalesced) when a watched cell
// records evidence against it. The registry never closes it. It has one
// reader: the rollout controller.
func (r *Registry) Alarms() <-chan struct{} { return r.alarms }

// signal wakes the alarm reader unless a wake-up is already pending.
func (r *Registry) signal() {
	select {
	case r.alarms <- struct{}{}:
	default:
	}
}

// Watch replaces the set of watched cells: each key is a target cell of a
// running rollout, its value the baseline cells its latency alarm is
// measured against (the baseline's p99 over the last HistogramSpan, with
// the margins of the decisive latency test; Judge keeps it current).
// Cells not named stop alarming. Target cells are created if new, so their
// first request can already alarm.
func (r *Registry) Watch(targets map[string][]string) {
	now := r.now()
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for name := range r.watched {
		if _, still := targets[name]; !still {
			if c := r.lookup(name); c != nil {
				c.alarm.Store(alarmOff)
			}
		}
	}
	r.watched = make(map[string]struct{}, len(targets))
	for name, base := range targets {
		r.watched[name] = struct{}{}
		r.Cell(name).alarm.Store(r.alarmLatency(base, now))
	}
}

// alarmLatency is the alarm value for a cell judged against base: the
// decisive latency threshold in nanoseconds, or alarmErrorsOnly.
func (r *Registry) alarmLatency(base []string, now time.Time) int64 {
	if us := r.alarmThreshold(base, now); us > 0 {
		return us * int64(time.Microsecond)
	}
	return alarmErrorsOnly
}

// setAlarm updates the alarm latency of watched cells (not of others: a
// judgement racing with Watch must not re-watch a cell).
func (r *Registry) setAlarm(cells []string, latency time.Duration) {
	v := int64(latency)
	if v <= 0 {
		v = alarmErrorsOnly
	}
	for _, name := range cells {
		c := r.lookup(name)
		if c == nil {
			continue
		}
		for {
			old := c.alarm.Load()
			if old == alarmOff || old == v || c.alarm.CompareAndSwap(old, v) {
				break
			}
		}
	}
}

// SetFleetSize tells the judge how many nodes judge the same rollouts at
// once, each free to revert on its own evidence: Alpha is the fleet's
// false-revert budget, so each node tests at Alpha / n (a union bound,
// valid however correlated the nodes' views are). n < 1 counts as 1.
func (r *Registry) SetFleetSize(n int) {
	r.fleetSize.Store(int64(max(n, 1)))
}

// FleetSize returns the fleet size set by SetFleetSize (1 by default).
func (r *Registry) FleetSize() int { return int(max(r.fleetSize.Load(), 1)) }
