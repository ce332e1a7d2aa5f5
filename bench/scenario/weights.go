package scenario

import (
	"context"
	"maps"
	"time"
)

// weightPoll is how often the watcher reads the balancer's weights. It is
// the resolution of the revert time and of the audit's revert window: a
// read costs a small map, so 2 ms is cheap and finer than any tick.
const weightPoll = 2 * time.Millisecond

// weightChange is one change of the balancer's weights as the watcher saw
// it: the change happened in (before, at], times since the scenario start.
type weightChange struct {
	before, at time.Duration
	weights    map[string]float64
}

// watchWeights polls read until ctx is done and returns every change,
// starting with the weights at the first read.
func watchWeights(ctx context.Context, base time.Time, read func() map[string]float64) []weightChange {
	t := time.NewTicker(weightPoll)
	defer t.Stop()
	// Each read is stamped before and after: a change seen by this read
	// and not by the previous one was applied after the previous read
	// began and before this one ended.
	pre := time.Since(base)
	out := []weightChange{{before: pre, at: time.Since(base), weights: read()}}
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		lastPre := pre
		pre = time.Since(base)
		w := read()
		if !maps.Equal(w, out[len(out)-1].weights) {
			out = append(out, weightChange{before: lastPre, at: time.Since(base), weights: w})
		}
	}
}

// timeline is the watcher's answer to the questions the report asks.
type timeline []weightChange

// canaryZeroAfter returns the first change after t that set canary's weight
// to 0 while it had been above 0: a revert.
func (tl timeline) canaryZeroAfter(t time.Duration, canary string) (weightChange, bool) {
	prev := 0.0
	for _, c := range tl {
		w := c.weights[canary]
		if c.at > t && prev > 0 && w == 0 {
			return c, true
		}
		prev = w
	}
	return weightChange{}, false
}

// allZero returns the first change that set every one of cells to 0 (a
// completed promotion of a canary over that baseline).
func (tl timeline) allZero(cells []string) (weightChange, bool) {
	for _, c := range tl {
		zero := true
		for _, name := range cells {
			zero = zero && c.weights[name] == 0
		}
		if zero {
			return c, true
		}
	}
	return weightChange{}, false
}
