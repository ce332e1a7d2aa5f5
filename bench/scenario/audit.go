package scenario

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Kinds of stickiness violation, as counted in Audit.Violations.
const (
	// ViolationCanaryEarly: a key reached the canary before the rollout
	// started, while the canary's weight was 0.
	ViolationCanaryEarly = "canary_before_rollout"
	// ViolationBetweenBaseline: a key was seen on two baseline cells. With
	// weighted rendezvous hashing and the baseline's weights scaled
	// together, that never happens.
	ViolationBetweenBaseline = "between_baseline"
	// ViolationOutOfCanary: during the promotion a key was routed to a
	// baseline cell after it had been routed to the canary.
	ViolationOutOfCanary = "out_of_canary"
	// ViolationNotRestored: a request sent after the revert was routed to
	// the canary, or to a cell other than the key's pre-rollout cell.
	ViolationNotRestored = "not_restored"
	// ViolationNotPromoted: a request sent after the baseline's weights
	// all reached 0 was routed to a baseline cell.
	ViolationNotPromoted = "not_promoted"
)

// maxExamples bounds the violations listed in full.
const maxExamples = 10

// Audit is the stickiness audit: did any key change cell other than as the
// weights required? It is computed from the responses alone.
type Audit struct {
	// Clean is true when no violation of any kind was found.
	Clean bool `json:"clean"`
	// Keys is the number of distinct keys with at least one routed response.
	Keys int `json:"keys"`
	// KeysWithHome were seen before the rollout started, so their
	// pre-rollout cell is known from the responses.
	KeysWithHome int `json:"keys_with_home"`
	// MovedToCanary were seen on a baseline cell and on the canary before
	// any revert.
	MovedToCanary int `json:"moved_to_canary"`
	// CheckedAfterRevert have a response to a request sent after the
	// canary's weight was back to 0. RestoredExactly are those of them
	// whose cell before the revert is known — seen on a baseline cell
	// before the rollout or during it, which is the same cell when
	// between_baseline is clean — and that were back on it every time.
	CheckedAfterRevert int `json:"checked_after_revert"`
	RestoredExactly    int `json:"restored_exactly"`
	// Unrouted counts responses that name no known cell (transport
	// errors); they say nothing about stickiness.
	Unrouted int64 `json:"unrouted"`
	// Violations counts keys per kind (a key counts once per kind).
	Violations map[string]int `json:"violations"`
	// Examples are the first few violations in full.
	Examples []Violation `json:"examples,omitempty"`
}

// Violation is one key that moved other than as the weights required.
type Violation struct {
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// auditInput is what the audit knows about the run besides the responses.
// Times are nanoseconds since the scenario's start.
type auditInput struct {
	cells     []string // obs.cell indexes these
	canary    int8
	keyPrefix string
	start     int64 // Controller.Start was called (the canary's weight was 0 until then)
	// reverted: the canary's weight went back to 0 at a moment in
	// (revertLo, revertHi].
	reverted           bool
	revertLo, revertHi int64
	// promoted: every baseline weight was 0 from promotedAt on.
	promoted   bool
	promotedAt int64
}

// audit checks every key's responses. The node routed each request at a
// moment in [lo, hi] of its observation, so an order is only asserted when
// the windows say so: "the key was on the canary before it was on a
// baseline cell" needs the canary response's hi before the baseline
// request's lo. Concurrent requests of one key therefore never make a
// false violation, and a real one is missed only if it hides inside such
// an overlap.
func audit(in auditInput, all []obs) Audit {
	a := Audit{Violations: map[string]int{}}
	routed := make([]obs, 0, len(all))
	for _, o := range all {
		if o.cell == noCell || o.key < 0 {
			a.Unrouted++
			continue
		}
		routed = append(routed, o)
	}
	slices.SortFunc(routed, func(x, y obs) int {
		return cmp.Or(cmp.Compare(x.key, y.key), cmp.Compare(x.lo, y.lo))
	})
	for i := 0; i < len(routed); {
		j := i + 1
		for j < len(routed) && routed[j].key == routed[i].key {
			j++
		}
		a.key(in, routed[i:j])
		i = j
	}
	a.Clean = len(a.Violations) == 0
	return a
}

// keyState is what the audit learned about one key so far.
type keyState struct {
	home       int8 // pre-rollout cell, or noCell
	prior      int8 // first baseline cell routed to before the revert, or noCell
	baseline   int8 // first baseline cell seen, or noCell
	canaryHi   int64
	onCanary   bool
	checked    bool // has a response sent after the revert
	restored   bool // every such response was on home
	violations map[string]bool
}

// key audits one key's responses, sorted by lo.
func (a *Audit) key(in auditInput, g []obs) {
	a.Keys++
	k := keyState{home: noCell, prior: noCell, baseline: noCell, canaryHi: math.MaxInt64, restored: true}
	name := fmt.Sprintf("%s%d", in.keyPrefix, g[0].key)
	flag := func(kind, format string, args ...any) {
		if k.violations == nil {
			k.violations = map[string]bool{}
		}
		if k.violations[kind] {
			return
		}
		k.violations[kind] = true
		a.Violations[kind]++
		if len(a.Examples) < maxExamples {
			a.Examples = append(a.Examples, Violation{Key: name, Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
	}
	for _, o := range g {
		canary := o.cell == in.canary
		before := !in.reverted || o.hi <= in.revertLo // routed before the revert
		after := in.reverted && o.lo > in.revertHi    // routed after it
		if o.hi < in.start {
			if canary {
				flag(ViolationCanaryEarly, "on %s at %s, before the rollout started", in.cells[o.cell], at(o.hi))
			} else if k.home == noCell {
				k.home = o.cell
			}
		}
		if canary {
			k.canaryHi = min(k.canaryHi, o.hi)
			k.onCanary = k.onCanary || before
		} else {
			if before && k.prior == noCell {
				k.prior = o.cell
			}
			if k.baseline == noCell {
				k.baseline = o.cell
			} else if o.cell != k.baseline {
				flag(ViolationBetweenBaseline, "on %s, then on %s at %s", in.cells[k.baseline], in.cells[o.cell], at(o.lo))
			}
			if before && k.canaryHi < o.lo {
				flag(ViolationOutOfCanary, "on %s by %s, then on %s at %s", in.cells[in.canary], at(k.canaryHi), in.cells[o.cell], at(o.lo))
			}
			if before && in.promoted && o.lo > in.promotedAt {
				flag(ViolationNotPromoted, "on %s at %s, after the baseline's weights reached 0 at %s", in.cells[o.cell], at(o.lo), at(in.promotedAt))
			}
		}
		if after {
			k.checked = true
			ref := k.home
			if ref == noCell {
				ref = k.prior
			}
			if canary || (ref != noCell && o.cell != ref) {
				k.restored = false
				flag(ViolationNotRestored, "on %s at %s after the revert at %s; before it, it was on %s",
					in.cells[o.cell], at(o.lo), at(in.revertHi), cellName(in.cells, ref))
			}
		}
	}
	if k.home != noCell {
		a.KeysWithHome++
	}
	if k.onCanary && k.baseline != noCell {
		a.MovedToCanary++
	}
	if k.checked {
		a.CheckedAfterRevert++
		if k.restored && (k.home != noCell || k.prior != noCell) {
			a.RestoredExactly++
		}
	}
}

// at formats a scenario time for a violation's detail.
func at(ns int64) string { return fmt.Sprintf("%.3fs", time.Duration(ns).Seconds()) }

func cellName(cells []string, i int8) string {
	if i == noCell {
		return "an unknown cell"
	}
	return cells[i]
}
