package rollout

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// tickRetries bounds how often one tick re-judges a rollout that an operator
// or peer changed while it was being judged, so a revert is not put off to
// the next tick by a concurrent action.
const tickRetries = 3

// Tick judges every active rollout once and acts on the verdicts: failing →
// revert now; degraded for DegradedTicks ticks → revert; healthy for the
// bake time with enough samples → next step (ramped under the per-tick cap);
// approval gates → awaiting_approval. Paused and awaiting rollouts are still
// judged: pausing stops promotion, not protection. Run calls Tick on the
// ticker; tests call it directly with a fake clock.
func (c *Controller) Tick(now time.Time) error {
	return c.eachActive("tick", func(id string) error { return c.tickOne(id, now) })
}

// React judges every active rollout at once and reverts those the judge
// calls failing; nothing else changes (ticks promote and count degraded
// verdicts). Run calls it when Hooks.Alarm fires, so a canary whose
// errors are decisive between ticks is reverted without waiting for the
// next one; tests call it directly with a fake clock.
func (c *Controller) React(now time.Time) error {
	return c.eachActive("react", func(id string) error { return c.reactOne(id, now) })
}

// eachActive runs one under tickMu for every active rollout (beginTick)
// and joins their errors, each wrapped with verb and the rollout's ID.
func (c *Controller) eachActive(verb string, one func(id string) error) error {
	c.tickMu.Lock()
	defer c.tickMu.Unlock()
	ids, err := c.beginTick()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := one(id); err != nil {
			errs = append(errs, fmt.Errorf("%s rollout %s: %w", verb, id, err))
		}
	}
	return errors.Join(errs...)
}

// reactOne judges one rollout and reverts it if failing.
func (c *Controller) reactOne(id string, now time.Time) error {
	for range tickRetries {
		prev := c.activeDoc(id)
		if prev == nil || prev.Step < 0 {
			return nil
		}
		v := c.judge(prev, now)
		if v.State != StateFailing {
			return nil
		}
		ch := c.rollback(prev, prev.clone(), v, now, "targets failing (between ticks): "+describe(v))
		committed, err := c.commitIfCurrent(prev, ch)
		if committed || err != nil {
			return err
		}
	}
	return nil
}

// beginTick re-sends weights after a failed Apply and lists active rollouts.
func (c *Controller) beginTick() ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.unapplied {
		c.reapplyLocked()
	}
	return slices.Sorted(maps.Keys(c.active)), nil
}

// tickOne judges one rollout without the lock, decides on a private copy,
// and commits unless the rollout changed meanwhile (then it starts over).
func (c *Controller) tickOne(id string, now time.Time) error {
	for range tickRetries {
		prev := c.activeDoc(id)
		if prev == nil {
			return nil // finished meanwhile
		}
		v := c.judge(prev, now)
		ch := c.decide(prev, prev.clone(), v, now)
		if ch == nil {
			return nil
		}
		committed, err := c.commitIfCurrent(prev, ch)
		if committed || err != nil {
			return err
		}
	}
	return nil
}

// activeDoc returns the current version of an active rollout (shared, read-only), or nil.
func (c *Controller) activeDoc(id string) *Document {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[id]
}

// commitIfCurrent commits ch if prev is still the rollout's current version.
func (c *Controller) commitIfCurrent(prev *Document, ch *change) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[prev.ID] != prev {
		return false, nil
	}
	return true, c.commitLocked(ch)
}

// judge asks the judge about the rollout's targets; before the first step
// there is nothing to judge.
func (c *Controller) judge(d *Document, now time.Time) Verdict {
	if d.Step < 0 {
		return Verdict{State: StateInconclusive, Rule: "not_started", Reason: "no step entered yet"}
	}
	if c.hooks.Judge == nil {
		return Verdict{State: StateInconclusive, Rule: "no_judge", Reason: "no judge configured"}
	}
	since := d.BakeFrom
	if since.IsZero() {
		since = d.StepBegan
	}
	p := d.Plan.clone()
	v := c.hooks.Judge(&p, since, now).sanitized()
	switch v.State {
	case StateHealthy, StateInconclusive, StateDegraded, StateFailing:
	default:
		v.Reason = fmt.Sprintf("unknown judge state %q treated as inconclusive; %s", v.State, v.Reason)
		v.State = StateInconclusive
	}
	return v
}

// decide applies the verdict to d (a private clone of prev) and returns the
// decision, or nil when nothing changes. Reverts come first and are never
// held back by status, bake, approvals, the decider role or the cap.
func (c *Controller) decide(prev, d *Document, v Verdict, now time.Time) *change {
	switch v.State {
	case StateFailing:
		return c.rollback(prev, d, v, now, "targets failing: "+describe(v))
	case StateDegraded:
		d.Degraded++
		limit := c.tuning.Load().DegradedTicks
		if d.Degraded >= limit {
			return c.rollback(prev, d, v, now, fmt.Sprintf("targets degraded for %d ticks: %s", d.Degraded, describe(v)))
		}
		why := fmt.Sprintf("degraded %d/%d, holding: %s", d.Degraded, limit, describe(v))
		return docChange(prev, d, ActionDegraded, ActorController, why, &v, now)
	}
	recovered := d.Degraded > 0
	d.Degraded = 0
	if ch := c.advance(prev, d, v, now); ch != nil {
		return ch
	}
	if recovered {
		return docChange(prev, d, ActionRecovered, ActorController, "verdict "+v.State+" ends the degraded streak", &v, now)
	}
	return nil
}

// rollback reverts d to its revert weights and ends it.
func (c *Controller) rollback(prev, d *Document, v Verdict, now time.Time, why string) *change {
	d.Weights = d.revertWeights()
	d.Status, d.Reason, d.Ended = StatusRolledBack, why, now
	ch := docChange(prev, d, ActionRollback, ActorController, why, &v, now)
	if d.Plan.Webhooks != nil {
		ch.notify = d.Plan.Webhooks.OnRollback
	}
	return ch
}

// advance moves a progressing plan forward: ramp toward the current step,
// start its bake, wait for approval, finish, or enter the next step.
func (c *Controller) advance(prev, d *Document, v Verdict, now time.Time) *change {
	if d.Status != StatusProgressing || !c.isDecider() {
		return nil
	}
	if d.Step >= 0 {
		if goal := d.goal(); !sameWeights(d.Weights, goal) || d.BakeFrom.IsZero() {
			return c.ramp(prev, d, goal, v, now)
		}
		if !baked(d, v, now) {
			return nil
		}
		d.LastHealthy, d.LastHealthyStep = maps.Clone(d.Weights), d.Step
		if d.Plan.approvalAt(d.Step) && d.ApprovedStep < d.Step {
			d.Status = StatusAwaitingApproval
			d.Reason = fmt.Sprintf("step %g%% baked healthy; waiting for approval", d.stepPercent())
			return docChange(prev, d, ActionAwaitApproval, ActorController, d.Reason, &v, now)
		}
		if d.Step == len(d.Plan.Steps)-1 {
			return promoted(prev, d, v, now)
		}
	}
	return c.enterNextStep(prev, d, v, now)
}

// ramp moves d's weights toward goal under the per-tick cap; the bake starts
// once goal is reached.
func (c *Controller) ramp(prev, d *Document, goal Weights, v Verdict, now time.Time) *change {
	w, reached := rampToward(d.Weights, goal, c.capWeight(d))
	d.Weights = w
	why := fmt.Sprintf("toward step %d (%g%%) at most %g%% per tick", d.Step+1, d.stepPercent(), c.capPercent(d))
	if reached {
		d.BakeFrom = now
		why = fmt.Sprintf("step %d (%g%%) reached; bake starts", d.Step+1, d.stepPercent())
	}
	return docChange(prev, d, ActionRamp, ActorController, why, &v, now)
}

// promoted ends d as promoted after its last step baked healthy.
func promoted(prev, d *Document, v Verdict, now time.Time) *change {
	d.Status, d.Ended = StatusPromoted, now
	d.Reason = "last step baked healthy"
	ch := docChange(prev, d, ActionPromoted, ActorController, d.Reason, &v, now)
	if d.Plan.Webhooks != nil {
		ch.notify = d.Plan.Webhooks.PostPromotion
	}
	return ch
}

// enterNextStep passes the pre-step webhook (if any), then enters the next step.
func (c *Controller) enterNextStep(prev, d *Document, v Verdict, now time.Time) *change {
	err, done := c.preStepResult(d)
	if !done {
		return nil // the hook is still running; look again next tick
	}
	if err != nil {
		hold := fmt.Sprintf("pre_step webhook for step %d failed: %v", d.Step+2, err)
		if d.Hold == hold {
			return nil
		}
		d.Hold = hold
		return docChange(prev, d, ActionHold, ActorController, hold, &v, now)
	}
	d.Hold = ""
	d.Step++
	d.StepBegan, d.BakeFrom = now, time.Time{}
	w, reached := rampToward(d.Weights, d.goal(), c.capWeight(d))
	d.Weights = w
	if reached {
		d.BakeFrom = now
	}
	why := fmt.Sprintf("entering step %d of %d (%g%%)", d.Step+1, len(d.Plan.Steps), d.stepPercent())
	return docChange(prev, d, ActionStep, ActorController, why, &v, now)
}

// baked: healthy, enough samples, and the step's bake time has passed at its weights.
func baked(d *Document, v Verdict, now time.Time) bool {
	return v.State == StateHealthy && v.Samples >= d.Plan.MinRequests &&
		!d.BakeFrom.IsZero() && now.Sub(d.BakeFrom) >= d.Plan.Bake.D()
}

// capPercent is the plan's per-tick cap in percent of its total weight.
func (c *Controller) capPercent(d *Document) float64 {
	if d.Plan.MaxStepPerTick > 0 {
		return d.Plan.MaxStepPerTick
	}
	return c.tuning.Load().MaxStepPerTick
}

// capWeight is the per-tick cap as a weight (0: no cap).
func (c *Controller) capWeight(d *Document) float64 {
	pct := c.capPercent(d)
	if pct >= 100 {
		return 0
	}
	return pct / 100 * total(&d.Plan, d.W0)
}

// describe renders a verdict for a reason string.
func describe(v Verdict) string {
	var b strings.Builder
	b.WriteString(v.State)
	if v.Rule != "" {
		b.WriteString(" by " + v.Rule)
	}
	if v.Reason != "" {
		b.WriteString(" (" + v.Reason + ")")
	}
	return b.String()
}
