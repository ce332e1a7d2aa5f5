package scenario

import (
	"fmt"
	"time"

	"github.com/cellgate/cellgate/rollout"
)

// Report is what one rollout scenario measured. Durations marshal to JSON
// as integer nanoseconds (the field names say so); times are since the
// scenario started.
type Report struct {
	Scenario    string        `json:"scenario"`        // "rollout"
	Fault       string        `json:"fault,omitempty"` // errors, latency or empty
	Rate        float64       `json:"rate"`
	Keys        int           `json:"keys"`
	Connections int           `json:"connections"`
	Tick        time.Duration `json:"tick_ns"`
	Bake        time.Duration `json:"bake_ns"`
	MinRequests int           `json:"min_requests"`

	RolloutID string         `json:"rollout_id"`
	Status    rollout.Status `json:"status"`
	Expected  rollout.Status `json:"expected_status"`
	Reason    string         `json:"reason,omitempty"` // the rollout's last reason
	// OK: the rollout ended as expected and the audit is clean.
	OK bool `json:"ok"`
	// Problems say why OK is false.
	Problems []string `json:"problems,omitempty"`

	Duration time.Duration `json:"duration_ns"`
	Requests int64         `json:"requests"`
	Failed   int64         `json:"failed"`

	Phases    []Phase      `json:"phases"`
	Injected  *FaultResult `json:"fault_result,omitempty"`
	Decisions []Decision   `json:"decisions"`
	Audit     Audit        `json:"audit"`
}

// FaultResult is what the fault did and how quickly it was undone.
type FaultResult struct {
	Kind    string        `json:"kind"`
	Step    int           `json:"step"` // the step it was injected in
	Percent float64       `json:"percent"`
	Onset   time.Duration `json:"onset_ns"`
	// Reverted: the canary's weight went back to 0 after the onset.
	Reverted bool `json:"reverted"`
	// RevertAfter is from the onset until the balancer's canary weight was
	// seen at 0 (polled every 2 ms): what users of the canary endured.
	RevertAfter time.Duration `json:"revert_after_ns"`
	// DecidedAfter is from the onset until the controller's rollback
	// decision (its journal time), when there was one.
	DecidedAfter time.Duration `json:"decided_after_ns,omitempty"`
	// RequestsAfter and FailedAfter count requests that could meet the
	// fault: due from the onset on, or still in flight at it.
	RequestsAfter int64  `json:"requests_after_onset"`
	FailedAfter   int64  `json:"failed_after_onset"`
	Reason        string `json:"reason,omitempty"` // the rollback decision's reason
}

// Decision is one journal entry of the rollout.
type Decision struct {
	At      time.Duration `json:"at_ns"`
	Action  string        `json:"action"`
	Step    int           `json:"step"`
	Percent float64       `json:"percent,omitempty"`
	Reason  string        `json:"reason,omitempty"`
}

// report assembles the report from the run's records.
func (s *scenario) report() *Report {
	r := &Report{
		Scenario: "rollout", Fault: s.o.Fault, Rate: s.o.Rate, Keys: s.o.Keys,
		Connections: s.o.Connections, Tick: s.o.Tick, Bake: s.o.Bake, MinRequests: s.o.MinRequests,
		RolloutID: s.id, Status: s.view.Status, Reason: s.view.Reason, Duration: s.endAt,
		Expected: rollout.StatusPromoted, Problems: s.problems,
	}
	if s.o.Fault != FaultNone {
		r.Expected = rollout.StatusRolledBack
	}
	all := s.rec.all()
	for _, o := range all {
		r.Requests++
		if o.failed {
			r.Failed++
		}
	}
	marks := []mark{{at: 0, name: "baseline"}}
	var rollbackAt time.Duration
	for _, ev := range s.view.Decisions {
		d := Decision{At: ev.Time.Sub(s.base), Action: ev.Action, Step: ev.Step, Percent: ev.StepPercent, Reason: ev.Reason}
		r.Decisions = append(r.Decisions, d)
		switch ev.Action {
		case rollout.ActionStep:
			marks = append(marks, mark{at: d.At, name: fmt.Sprintf("step %d (%g%%)", ev.Step, ev.StepPercent), step: ev.Step, percent: ev.StepPercent})
		case rollout.ActionPromoted:
			marks = append(marks, mark{at: d.At, name: "promoted", percent: 100})
		case rollout.ActionRollback, rollout.ActionAbort:
			rollbackAt = d.At
		}
	}
	in := auditInput{cells: cellNames, canary: canaryIndex, keyPrefix: keyPrefix, start: int64(s.startAt)}
	if s.id != "" {
		if c, ok := s.tl.canaryZeroAfter(s.startAt, canaryName); ok {
			in.reverted, in.revertLo, in.revertHi = true, int64(c.before), int64(c.at)
			marks = append(marks, mark{at: c.at, name: "after revert"})
		}
		if c, ok := s.tl.allZero(baseline); ok {
			in.promoted, in.promotedAt = true, int64(c.at)
		}
	}
	if s.faultAt > 0 {
		marks = append(marks, mark{at: s.faultAt, name: "fault", step: s.faultStp, percent: s.faultPct, takesInFlight: true})
		r.Injected = s.faultResult(all, in, rollbackAt)
	}
	r.Phases = phases(marks, s.endAt, all, canaryIndex)
	r.Audit = audit(in, all)
	r.judge()
	return r
}

// faultResult measures the fault from its onset.
func (s *scenario) faultResult(all []obs, in auditInput, rollbackAt time.Duration) *FaultResult {
	f := &FaultResult{Kind: s.o.Fault, Step: s.faultStp, Percent: s.faultPct, Onset: s.faultAt}
	if in.reverted && in.revertHi > int64(s.faultAt) {
		f.Reverted = true
		f.RevertAfter = time.Duration(in.revertHi) - s.faultAt
	}
	if rollbackAt > s.faultAt {
		f.DecidedAfter = rollbackAt - s.faultAt
		for _, ev := range s.view.Decisions {
			if ev.Action == rollout.ActionRollback || ev.Action == rollout.ActionAbort {
				f.Reason = ev.Reason
			}
		}
	}
	for _, o := range all {
		if o.hi >= int64(s.faultAt) {
			f.RequestsAfter++
			if o.failed {
				f.FailedAfter++
			}
		}
	}
	return f
}

// judge decides OK and says why not.
func (r *Report) judge() {
	if r.Status != r.Expected {
		r.Problems = append(r.Problems, fmt.Sprintf("rollout ended %q, expected %q", r.Status, r.Expected))
	}
	if !r.Audit.Clean {
		r.Problems = append(r.Problems, fmt.Sprintf("stickiness audit found violations: %v", r.Audit.Violations))
	}
	if r.Fault != FaultNone && (r.Injected == nil || !r.Injected.Reverted) {
		r.Problems = append(r.Problems, "the fault was not reverted")
	}
	if r.Requests == 0 {
		r.Problems = append(r.Problems, "no responses")
	}
	r.OK = len(r.Problems) == 0
}
