package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Strategies a plan may name.
const (
	// StrategyCanary sends steps[i] % of the plan's traffic to the targets,
	// split equally, and the rest to the baseline in proportion to their
	// pre-rollout weights.
	StrategyCanary = "canary"
	// StrategyRolling pairs targets[i] with baseline[i] and switches whole
	// pairs in waves: a step is the share of pairs switched.
	StrategyRolling = "rolling"
	// StrategyBlueGreen pairs green twins (targets) with blue twins
	// (baseline); each pair's traffic is split steps[i] % green, so a small
	// first step bakes a slice and the last step switches whole.
	StrategyBlueGreen = "bluegreen"
	// StrategyFlag releases a feature-flag variant (rollout/flag.go): its
	// target is the variant's pseudo-cell, its baseline the flag's other
	// variants, and steps[i] % of the flag's traffic goes to the variant
	// with the others keeping their relative weights — which, under
	// rendezvous hashing, is raising the variant's weight alone.
	StrategyFlag = "flag"
)

// Revert targets a plan may name in revert_to.
const (
	// RevertLastHealthy restores the weights of the last step judged healthy,
	// or the pre-rollout weights when none was: a rolling update steps back
	// one wave.
	RevertLastHealthy = "last_healthy"
	// RevertStart restores the pre-rollout weights: a canary goes back to 0
	// and blue/green switches back to the blue twins.
	RevertStart = "start"
)

// Signal gate directions.
const (
	BadAbove = "above"
	BadBelow = "below"
)

// Plan is a release plan as posted to POST /v1/rollouts or named in the
// config. It is immutable once a rollout starts: the document keeps a copy.
type Plan struct {
	// Name identifies the plan; rollout ids are derived from it.
	Name string `json:"name"`
	// Strategy is canary (default), rolling or bluegreen.
	Strategy string `json:"strategy"`
	// Flag and Variant name what a "flag" plan releases; Targets and
	// Baseline are then derived (FlagCell) and must be left out.
	Flag    string `json:"flag,omitempty"`
	Variant string `json:"variant,omitempty"`
	// Targets are the cells receiving the new version.
	Targets []string `json:"targets"`
	// Baseline are the cells the targets are compared with and take traffic from.
	Baseline []string `json:"baseline"`
	// Steps are percentages of the plan's traffic sent to the targets, strictly
	// increasing, in (0, 100], ending at 100.
	Steps []float64 `json:"steps"`
	// Bake is how long each step must be judged healthy before the next (default 30s).
	Bake Duration `json:"bake"`
	// MinRequests is how many target requests the judged window must hold
	// before a healthy verdict may promote (default 100).
	MinRequests int64 `json:"min_requests"`
	// ApproveAt lists steps (percent values) after which the plan waits in
	// awaiting_approval until an operator approves.
	ApproveAt []float64 `json:"approve_at,omitempty"`
	// MaxStepPerTick caps the largest weight change of any cell per tick, as a
	// percent of the plan's total weight; 0 takes the controller's default.
	// Reverts are never capped.
	MaxStepPerTick float64 `json:"max_step_per_tick,omitempty"`
	// RevertTo is last_healthy or start; empty takes the strategy's default
	// (canary and bluegreen: start, rolling: last_healthy).
	RevertTo string `json:"revert_to,omitempty"`
	// Webhooks are optional HTTP calls around the plan's steps.
	Webhooks *Webhooks `json:"webhooks,omitempty"`
	// Signals gate the plan on external per-cell signals (POST /v1/signals).
	Signals []SignalGate `json:"signals,omitempty"`
	// Release describes what is being released, for the release catalog.
	Release Release `json:"release"`
}

// Webhooks are URLs called with a JSON body describing the rollout. A failing
// pre_step hook (error or non-2xx) holds the plan at its current step and is
// retried on later ticks; the other two are notifications whose failure is
// only logged.
type Webhooks struct {
	PreStep       string   `json:"pre_step,omitempty"`
	PostPromotion string   `json:"post_promotion,omitempty"`
	OnRollback    string   `json:"on_rollback,omitempty"`
	Timeout       Duration `json:"timeout,omitempty"` // default 5s
}

// SignalGate holds the plan to an external per-cell signal (POST
// /v1/signals, e.g. a model-quality score). The judge evaluates it: a value
// on the bad side of Threshold is a degraded verdict naming the signal, so
// rollout.degraded_ticks of them revert the plan.
type SignalGate struct {
	// Name is the signal's name as posted to /v1/signals.
	Name string `json:"name"`
	// Cell limits the gate to one cell; empty means every target cell.
	Cell string `json:"cell,omitempty"`
	// Threshold is the bad boundary.
	Threshold float64 `json:"threshold"`
	// BadWhen is "above" (default) or "below".
	BadWhen string `json:"bad_when,omitempty"`
}

// Release is the catalog entry's description of the release.
type Release struct {
	Version string `json:"version,omitempty"`
	Notes   string `json:"notes,omitempty"`
}

// Defaults a plan takes for fields it leaves out; each with why.
const (
	// defaultBake of 30s gives a 1s tick thirty judgements per step.
	defaultBake = 30 * time.Second
	// defaultMinRequests of 100 keeps a 1 % error ratio from hiding in noise.
	defaultMinRequests = 100
	// defaultWebhookTimeout of 5s is long enough for a CI hook, short enough
	// that a hung hook does not hide a stuck plan for long.
	defaultWebhookTimeout = 5 * time.Second
)

// defaultSteps returns a strategy's steps when a plan names none.
func defaultSteps(strategy string) []float64 {
	switch strategy {
	case StrategyBlueGreen:
		return []float64{5, 100}
	case StrategyRolling:
		return []float64{25, 50, 100}
	default:
		return []float64{1, 5, 25, 50, 100}
	}
}

// maxPlanBytes bounds what DecodePlan reads; a plan is a few hundred bytes.
const maxPlanBytes = 1 << 20

// PlanDefaults are what a plan's bake and min_requests are when it leaves
// them out: a node passes its config's [rollout] bake and min_requests.
type PlanDefaults struct {
	Bake        time.Duration
	MinRequests int64
}

// DefaultPlanDefaults are the package's own plan defaults (see defaultBake).
func DefaultPlanDefaults() PlanDefaults {
	return PlanDefaults{Bake: defaultBake, MinRequests: defaultMinRequests}
}

// DecodePlan decodes one plan strictly with DefaultPlanDefaults; see
// DecodePlanWith.
func DecodePlan(data []byte) (Plan, error) { return DecodePlanWith(data, DefaultPlanDefaults()) }

// DecodePlanWith decodes one plan strictly: unknown fields, trailing data
// and non-string durations are errors. Fields left out take their defaults,
// bake and min_requests those of def; a field given explicitly (even
// "bake": "0s") keeps its value. It does not validate: call Validate with
// the known cells.
func DecodePlanWith(data []byte, def PlanDefaults) (Plan, error) {
	if len(data) > maxPlanBytes {
		return Plan{}, fmt.Errorf("decode plan: %d bytes is over the %d limit: %w", len(data), maxPlanBytes, ErrInvalid)
	}
	p := Plan{Bake: Duration(def.Bake), MinRequests: def.MinRequests}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("decode plan: %w: %w", err, ErrInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Plan{}, fmt.Errorf("decode plan: trailing data after the plan object: %w", ErrInvalid)
	}
	p.fillDefaults()
	return p, nil
}

// fillDefaults sets the fields whose zero value is never meaningful. Bake
// and MinRequests are not touched: zero is a valid explicit choice.
func (p *Plan) fillDefaults() {
	if p.Strategy == "" {
		p.Strategy = StrategyCanary
	}
	if p.Steps == nil {
		p.Steps = defaultSteps(p.Strategy)
	}
	if p.RevertTo == "" {
		p.RevertTo = p.defaultRevertTo()
	}
	if p.Webhooks != nil && p.Webhooks.Timeout == 0 {
		p.Webhooks.Timeout = Duration(defaultWebhookTimeout)
	}
	// Empty lists of omitted-when-empty fields become nil, so a plan reads
	// back from its own JSON unchanged.
	if len(p.ApproveAt) == 0 {
		p.ApproveAt = nil
	}
	if len(p.Signals) == 0 {
		p.Signals = nil
	}
	for i := range p.Signals {
		if p.Signals[i].BadWhen == "" {
			p.Signals[i].BadWhen = BadAbove
		}
	}
}

// defaultRevertTo follows the release patterns: a canary goes back to 0 and
// blue/green back to blue at once; a rolling update steps back one wave.
func (p *Plan) defaultRevertTo() string {
	if p.Strategy == StrategyRolling {
		return RevertLastHealthy
	}
	return RevertStart
}

// clone returns a deep copy, so a document never shares slices with a caller.
func (p Plan) clone() Plan {
	p.Targets = slices.Clone(p.Targets)
	p.Baseline = slices.Clone(p.Baseline)
	p.Steps = slices.Clone(p.Steps)
	p.ApproveAt = slices.Clone(p.ApproveAt)
	p.Signals = slices.Clone(p.Signals)
	if p.Webhooks != nil {
		w := *p.Webhooks
		p.Webhooks = &w
	}
	return p
}

// cells returns targets then baseline.
func (p *Plan) cells() []string {
	return append(slices.Clone(p.Targets), p.Baseline...)
}

// approvalAt reports whether step index i is an approval gate.
func (p *Plan) approvalAt(i int) bool {
	return i >= 0 && i < len(p.Steps) && slices.Contains(p.ApproveAt, p.Steps[i])
}
