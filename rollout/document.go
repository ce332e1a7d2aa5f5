package rollout

import (
	"bytes"
	"encoding/json"
	"maps"
	"time"
)

// Status is a rollout's place in the state machine.
type Status string

// Rollout statuses (the outside contract's values).
const (
	StatusProgressing      Status = "progressing"
	StatusPaused           Status = "paused"
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusPromoted         Status = "promoted"
	StatusRolledBack       Status = "rolled_back"
	StatusAborted          Status = "aborted"
)

// Terminal reports whether no further transition is possible.
func (s Status) Terminal() bool {
	return s == StatusPromoted || s == StatusRolledBack || s == StatusAborted
}

// Document is one rollout's whole state: the unit the journal stores and
// gossip replicates. Generation grows by one on every change, so a newer
// document is recognisable anywhere in the cluster.
type Document struct {
	ID         string `json:"id"`
	Generation uint64 `json:"generation"`
	// Epoch is this version's place on the cell clock (manual.go): it
	// orders changes to one cell made by different documents.
	Epoch  uint64 `json:"epoch,omitempty"`
	Plan   Plan   `json:"plan"`
	Status Status `json:"status"`
	// Step is the index of the step last entered; -1 before the first.
	Step int `json:"step"`
	// Weights are the plan's cells' weights as last committed.
	Weights Weights `json:"weights"`
	// W0 are the pre-rollout weights; abort restores them.
	W0 Weights `json:"w0"`
	// LastHealthy are the weights of the last step judged healthy (nil: none).
	LastHealthy     Weights `json:"last_healthy,omitempty"`
	LastHealthyStep int     `json:"last_healthy_step"`
	// ApprovedStep is the last step index an operator approved (-1: none).
	ApprovedStep int `json:"approved_step"`
	// Degraded counts consecutive degraded verdicts.
	Degraded int `json:"degraded"`
	// Reason says why the status is what it is (paused by whom, why reverted).
	Reason string `json:"reason,omitempty"`
	// Hold says why a progressing plan is not advancing (a failing pre-step hook).
	Hold string `json:"hold,omitempty"`
	// LastVerdict is the verdict the last judged decision was made on; the
	// release catalog keeps it as the final SLI snapshot.
	LastVerdict *Verdict `json:"last_verdict,omitempty"`
	// StepBegan is when the current step was entered; BakeFrom is when its
	// weights were fully reached (zero while ramping under the per-tick cap).
	StepBegan time.Time `json:"step_began,omitzero"`
	BakeFrom  time.Time `json:"bake_from,omitzero"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Ended     time.Time `json:"ended,omitzero"`
}

// clone returns a deep copy.
func (d *Document) clone() *Document {
	c := *d
	c.Plan = d.Plan.clone()
	c.Weights = maps.Clone(d.Weights)
	c.W0 = maps.Clone(d.W0)
	c.LastHealthy = maps.Clone(d.LastHealthy)
	if d.LastVerdict != nil {
		v := *d.LastVerdict
		c.LastVerdict = &v
	}
	return &c
}

// stepPercent is the current step's percentage (0 before the first step).
func (d *Document) stepPercent() float64 {
	if d.Step < 0 || d.Step >= len(d.Plan.Steps) {
		return 0
	}
	return d.Plan.Steps[d.Step]
}

// goal is the weights the current step means.
func (d *Document) goal() Weights {
	return stepWeights(&d.Plan, d.W0, d.stepPercent())
}

// revertWeights are the weights a revert restores.
func (d *Document) revertWeights() Weights {
	rt := d.Plan.RevertTo
	if rt == "" {
		rt = d.Plan.defaultRevertTo()
	}
	if rt == RevertLastHealthy && d.LastHealthy != nil {
		return maps.Clone(d.LastHealthy)
	}
	return maps.Clone(d.W0)
}

// dominance orders statuses for Merge within one generation: a revert or
// abort beats a hold, which beats a promotion.
func dominance(s Status) int {
	switch s {
	case StatusAborted:
		return 5
	case StatusRolledBack:
		return 4
	case StatusPaused:
		return 3
	case StatusAwaitingApproval:
		return 2
	case StatusProgressing:
		return 1
	default: // promoted and unknown
		return 0
	}
}

// Merge decides which of two versions of the same rollout document wins. It
// is pure, and symmetric for documents that differ: Merge(a, b) and
// Merge(b, a) pick the same one. The rule, in order:
//  1. a revert is final: a rolled_back or aborted version beats any version
//     that is not, whatever the generations (a node that had not yet heard
//     of the revert may have promoted further; its promotion must not undo
//     the revert);
//  2. the higher generation wins;
//  3. within a generation the more cautious status wins (aborted >
//     rolled_back > paused > awaiting_approval > progressing > promoted), so
//     any node may revert and a concurrent promotion loses;
//  4. then the lower step wins (less traffic on the new version);
//  5. then the smaller canonical JSON, only so the choice is deterministic.
//
// A zero local (no ID) takes remote; documents of different rollouts are not
// merged: local is returned.
func Merge(local, remote Document) Document {
	if local.ID == "" || (remote.ID == local.ID && remoteWins(local, remote)) {
		return remote
	}
	return local
}

// remoteWins is Merge's rule for two versions of one rollout.
func remoteWins(local, remote Document) bool {
	if rr, lr := reverted(remote.Status), reverted(local.Status); rr != lr {
		return rr
	}
	if remote.Generation != local.Generation {
		return remote.Generation > local.Generation
	}
	if dr, dl := dominance(remote.Status), dominance(local.Status); dr != dl {
		return dr > dl
	}
	if remote.Step != local.Step {
		return remote.Step < local.Step
	}
	rb, errR := json.Marshal(remote)
	lb, errL := json.Marshal(local)
	if errR != nil || errL != nil {
		return false
	}
	return bytes.Compare(rb, lb) < 0
}

// reverted reports the statuses that end a rollout by taking traffic back.
func reverted(s Status) bool { return s == StatusRolledBack || s == StatusAborted }
