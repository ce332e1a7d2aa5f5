package rollout

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Start validates p against the known cells and starts it; actor is who
// asked ("admin:<token name>", "config"). The first step is entered on the
// next tick. A plan whose cells overlap an active rollout is refused with
// ErrConflict; an invalid one with an error wrapping ErrInvalid (a
// *ValidationError listing every problem).
func (c *Controller) Start(p Plan, actor string) (string, error) {
	p = p.clone()
	p.fillDefaults()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", ErrClosed
	}
	p.resolveFlag(c.weights)
	if err := p.Validate(c.weights); err != nil {
		return "", fmt.Errorf("start plan %s: %w", p.Name, err)
	}
	if err := c.checkOverlapLocked(&p, ""); err != nil {
		return "", err
	}
	w0 := pick(c.weights, p.cells())
	if total(&p, w0) <= 0 {
		return "", fmt.Errorf("start plan %s: its cells carry no weight, so no step can move traffic: %w", p.Name, ErrInvalid)
	}
	now := c.now()
	id, err := c.newIDLocked(&p, now)
	if err != nil {
		return "", err
	}
	d := &Document{
		ID: id, Plan: p, Status: StatusProgressing, Step: -1,
		Weights: maps.Clone(w0), W0: w0, LastHealthyStep: -1, ApprovedStep: -1, Created: now,
	}
	why := fmt.Sprintf("%s plan over targets %v and baseline %v, steps %v", p.Strategy, p.Targets, p.Baseline, p.Steps)
	if err := c.commitLocked(docChange(&Document{ID: id}, d, ActionStart, actor, why, nil, now)); err != nil {
		return "", fmt.Errorf("start plan %s: %w", p.Name, err)
	}
	return id, nil
}

// checkOverlapLocked refuses p when an active rollout (other than except) holds one of its cells.
func (c *Controller) checkOverlapLocked(p *Plan, except string) error {
	for _, id := range slices.Sorted(maps.Keys(c.active)) {
		if id == except {
			continue
		}
		if shared := overlap(p, &c.active[id].Plan); len(shared) > 0 {
			return fmt.Errorf("plan %s: cells %s are under rollout %s (%s): %w",
				p.Name, strings.Join(shared, ", "), id, c.active[id].Status, ErrConflict)
		}
	}
	return nil
}

// overlap returns the cells two plans share.
func overlap(a, b *Plan) []string {
	var out []string
	bc := b.cells()
	for _, c := range a.cells() {
		if slices.Contains(bc, c) {
			out = append(out, c)
		}
	}
	return out
}

// Pause stops a progressing or awaiting rollout from promoting. It is still
// judged and still reverts.
func (c *Controller) Pause(id, actor, reason string) error {
	return c.act(id, "pause", []Status{StatusProgressing, StatusAwaitingApproval}, func(d *Document, _ time.Time) (string, string) {
		d.Status = StatusPaused
		d.Reason = withReason("paused by "+actor, reason)
		return ActionPause, d.Reason
	}, actor)
}

// Resume lets a paused rollout progress again (an approval gate it was
// waiting at is asked again once the step bakes).
func (c *Controller) Resume(id, actor string) error {
	return c.act(id, "resume", []Status{StatusPaused}, func(d *Document, _ time.Time) (string, string) {
		d.Status, d.Reason = StatusProgressing, ""
		return ActionResume, "resumed by " + actor
	}, actor)
}

// Approve passes the approval gate a rollout is waiting at.
func (c *Controller) Approve(id, actor string) error {
	return c.act(id, "approve", []Status{StatusAwaitingApproval}, func(d *Document, _ time.Time) (string, string) {
		d.Status, d.Reason, d.ApprovedStep = StatusProgressing, "", d.Step
		return ActionApprove, fmt.Sprintf("step %g%% approved by %s", d.stepPercent(), actor)
	}, actor)
}

// Abort ends a rollout and restores its pre-rollout weights at once.
func (c *Controller) Abort(id, actor, reason string) error {
	return c.act(id, "abort", []Status{StatusProgressing, StatusPaused, StatusAwaitingApproval}, func(d *Document, now time.Time) (string, string) {
		d.Weights = maps.Clone(d.W0)
		d.Status, d.Ended = StatusAborted, now
		d.Reason = withReason("aborted by "+actor, reason)
		return ActionAbort, d.Reason
	}, actor)
}

// PromoteNow moves a rollout to its next step's weights at once, skipping
// bake, samples, approval, the pre-step hook and the per-tick cap; on the
// last step it finishes the rollout as promoted.
func (c *Controller) PromoteNow(id, actor string) error {
	return c.act(id, "promote", []Status{StatusProgressing, StatusPaused, StatusAwaitingApproval}, func(d *Document, now time.Time) (string, string) {
		if d.Step < len(d.Plan.Steps)-1 && (d.Step < 0 || sameWeights(d.Weights, d.goal())) {
			d.Step++
			d.StepBegan = now
		}
		d.Weights, d.BakeFrom, d.Hold = d.goal(), now, ""
		d.Status, d.Reason, d.ApprovedStep = StatusProgressing, "", max(d.ApprovedStep, d.Step-1)
		if d.Step == len(d.Plan.Steps)-1 && d.Plan.Steps[d.Step] == 100 {
			d.Status, d.Ended, d.Reason = StatusPromoted, now, "promoted by "+actor
		}
		return ActionPromoteNow, fmt.Sprintf("promoted to step %d (%g%%) by %s", d.Step+1, d.stepPercent(), actor)
	}, actor)
}

// act runs an operator action: the rollout must be active and in one of
// allowed; fn edits a private copy and names the action.
func (c *Controller) act(id, verb string, allowed []Status, fn func(d *Document, now time.Time) (action, reason string), actor string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	prev, ok := c.active[id]
	if !ok {
		if d, err := c.j.Document(id); err == nil {
			return fmt.Errorf("%s rollout %s: it is %s: %w", verb, id, d.Status, ErrBadState)
		}
		return fmt.Errorf("%s rollout %q: %w", verb, id, ErrNotFound)
	}
	if !slices.Contains(allowed, prev.Status) {
		return fmt.Errorf("%s rollout %s: it is %s: %w", verb, id, prev.Status, ErrBadState)
	}
	d, now := prev.clone(), c.now()
	action, reason := fn(d, now)
	ch := docChange(prev, d, action, actor, reason, nil, now)
	if d.Status == StatusAborted && d.Plan.Webhooks != nil {
		ch.notify = d.Plan.Webhooks.OnRollback
	}
	if d.Status == StatusPromoted && d.Plan.Webhooks != nil {
		ch.notify = d.Plan.Webhooks.PostPromotion
	}
	return c.commitLocked(ch)
}

// SetWeight changes one cell's weight by hand. On a cell under an active
// rollout it also pauses the rollout (if progressing or awaiting approval)
// and records why, so the controller does not fight the operator; Resume
// ramps back to the plan's weights. Elsewhere it is the next version of the
// cell's manual document (manual.go). Either way one document is
// journalled, applied and published.
func (c *Controller) SetWeight(cell string, w float64, actor, reason string) error {
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		return fmt.Errorf("set weight of %s to %g: a weight is a finite number >= 0: %w", cell, w, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	old, ok := c.weights[cell]
	if !ok {
		return fmt.Errorf("set weight of %q: %w", cell, ErrNotFound)
	}
	now := c.now()
	why := withReason(fmt.Sprintf("manual weight change on %s: %g → %g by %s", cell, old, w, actor), reason)
	for _, id := range slices.Sorted(maps.Keys(c.active)) {
		prev := c.active[id]
		if !slices.Contains(prev.Plan.cells(), cell) {
			continue
		}
		d := prev.clone()
		d.Weights[cell], d.BakeFrom, d.Reason = w, time.Time{}, why
		if d.Status == StatusProgressing || d.Status == StatusAwaitingApproval {
			d.Status = StatusPaused
		}
		return c.commitLocked(docChange(prev, d, ActionSetWeight, actor, why, nil, now))
	}
	return c.setManualLocked(cell, old, w, actor, why, now)
}

// SyncCells adopts a reloaded config's cells: new cells join with their
// configured weight; a cell whose configured weight changed takes it unless
// a rollout holds the cell (a running rollout keeps its weights); a rollout
// whose cells were removed is aborted. One event records the changes.
func (c *Controller) SyncCells(cells map[string]float64, actor string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	now := c.now()
	for _, id := range slices.Sorted(maps.Keys(c.active)) {
		prev := c.active[id]
		var gone []string
		for _, cell := range prev.Plan.cells() {
			if _, ok := cells[cell]; !ok {
				gone = append(gone, cell)
			}
		}
		if len(gone) == 0 {
			continue
		}
		d := prev.clone()
		d.Weights, d.Status, d.Ended = maps.Clone(d.W0), StatusAborted, now
		d.Reason = "config reload removed cells " + strings.Join(gone, ", ")
		if err := c.commitLocked(docChange(prev, d, ActionAbort, actor, d.Reason, nil, now)); err != nil {
			return err
		}
	}
	return c.syncWeightsLocked(cells, actor, now)
}

// syncWeightsLocked applies a reload's weights to cells outside rollouts.
func (c *Controller) syncWeightsLocked(cells map[string]float64, actor string, now time.Time) error {
	held := map[string]bool{}
	for _, d := range c.active {
		for _, cell := range d.Plan.cells() {
			held[cell] = true
		}
	}
	before, after := Weights{}, Weights{}
	for cell, w := range cells {
		old, known := c.weights[cell]
		prevCfg, hadCfg := c.opts.Cells[cell]
		if held[cell] || (known && hadCfg && prevCfg == w) || (known && old == w) {
			continue
		}
		if known {
			before[cell] = old
		}
		after[cell] = w
	}
	for cell := range c.weights {
		if _, ok := cells[cell]; !ok {
			delete(c.weights, cell)
		}
	}
	c.opts.Cells = maps.Clone(cells)
	if len(after) == 0 {
		return nil
	}
	return c.commitLocked(&change{
		event: Event{Time: now, Actor: actor, Action: ActionSyncCells, Reason: "config reload", Before: before, After: after},
		apply: after,
	})
}

func withReason(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + ": " + reason
}
