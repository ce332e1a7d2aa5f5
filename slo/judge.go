package slo

import (
	"fmt"
	"strings"
	"time"
)

// State is the judge's verdict on a canary.
type State int

// The states, from "no opinion" to "revert now". The zero value is
// Inconclusive so a forgotten verdict never reads as healthy.
const (
	Inconclusive State = iota
	Healthy
	Degraded
	Failing
)

var stateNames = [...]string{"inconclusive", "healthy", "degraded", "failing"}

// String returns "inconclusive", "healthy", "degraded" or "failing".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText encodes the state as its name (JSON uses it too).
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("slo: invalid state %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if string(b) == n {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("slo: unknown state %q", b)
}

// Rules named in Verdict.Rule.
const (
	RuleFastBurn      = "fast_burn"
	RuleFailRatio     = "fail_ratio"
	RuleSlowBurn      = "slow_burn"
	RuleSignal        = "signal"
	RuleErrorRatio    = "error_ratio"
	RuleLatency       = "latency"
	RuleTTFB          = "ttfb"
	RuleMinRequests   = "min_requests"
	RuleSignalMissing = "signal_missing"
	RuleNoRegression  = "no_regression"
)

// Verdict is the judge's answer with the numbers it was made on; it is
// the audit record of a rollout decision and marshals to JSON as such.
type Verdict struct {
	State State `json:"state"`
	// Rule is the rule that decided (one of the Rule… constants).
	Rule string `json:"rule"`
	// Reason says why in one human sentence.
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Since    time.Time `json:"since"`
	Targets  []string  `json:"targets"`
	Baseline []string  `json:"baseline"`

	// Canary and BaselineStats cover Since..At (clipped to History).
	Canary        Stats `json:"canary_stats"`
	BaselineStats Stats `json:"baseline_stats"`
	// Recent is the canary over FailWindow, the FailRatio rule's input.
	Recent Stats `json:"recent_stats"`
	// Burn holds the canary's burn rates (every SLO, every rule window).
	Burn []BurnRate `json:"burn"`
	// Tests holds the sequential canary-vs-baseline comparisons.
	Tests   []TestResult    `json:"tests"`
	Signals []SignalReading `json:"signals,omitempty"`
}

// Judge compares the target (canary) cells, merged, with the baseline cells
// over the same time, from since until now (clipped to History), and says
// how the canary is doing:
//
//   - failing: the fast-burn rule fires on the canary (any SLO); a
//     decisive test finds its errors, or its requests slower than the
//     latency alarm, decisively above (1+DecisiveMargin) × baseline's,
//     however few requests that takes; or its error ratio over FailWindow
//     is at least FailRatio and significantly above baseline's;
//   - degraded: the slow-burn rule fires, a signal gate is breached, or a
//     sequential test finds the canary's error ratio or latency (rank test
//     plus P99Margin) significantly worse than baseline's;
//   - inconclusive: fewer than MinRequests canary or baseline requests, or
//     a gated signal is missing;
//   - healthy: none of the above.
//
// Judge is stateless: the tests are mixture SPRTs on the data since
// `since`, valid however often Judge is called (see the package doc). A
// new step passes a new since.
func (r *Registry) Judge(targets, baseline []string, since time.Time, gates []SignalGate) Verdict {
	return r.judge(targets, baseline, since, gates, false)
}

// judgeFailing is Judge reduced to the rules that say failing, for a
// reaction to an alarm, which acts on failing only (rollout's React): the
// same code up to the last failing rule, so it says failing exactly when
// Judge does, without the degraded tests and percentiles that a tick
// needs (the simulations' alarm looks use it). Otherwise it returns an
// inconclusive verdict without a rule.
func (r *Registry) judgeFailing(targets, baseline []string, since time.Time) Verdict {
	return r.judge(targets, baseline, since, nil, true)
}

func (r *Registry) judge(targets, baseline []string, since time.Time, gates []SignalGate, failingOnly bool) Verdict {
	cfg := r.cfg.Load()
	now := r.now()
	if oldest := now.Add(-cfg.History); since.IsZero() || since.Before(oldest) {
		since = oldest
	}
	v := Verdict{At: now, Since: since, Targets: targets, Baseline: baseline}
	// Gather: burn windows, the FailRatio suffix, the step so far, signals.
	burns := r.burns(targets, now)
	v.Burn = burns.rates

	rc, rb := r.recent(targets, baseline, now)
	v.Recent = rc.stats(targets)

	// The latest data, live histogram slice included: a decisive
	// latency regression must not wait for a slice to complete.
	kinds := histTotal
	if cfg.TTFBThreshold > 0 {
		kinds |= histTTFB
	}
	c := r.gather(targets, since, now, kinds)
	b := r.gather(baseline, since, now, kinds)
	defer c.release()
	defer b.release()
	stats := func() { v.Canary, v.BaselineStats = c.stats(targets), b.stats(baseline) }
	fail := func(rule, reason string) Verdict {
		if failingOnly {
			stats()
		}
		return v.decide(Failing, rule, reason)
	}
	if !failingOnly {
		stats()
		v.Signals = r.readSignals(targets, gates, now)
	}

	// Decide, worst first.
	lv := r.levels(cfg)
	if f := burns.firing(cfg.FastBurn, WindowFastLong, WindowFastShort); len(f) > 0 {
		return fail(RuleFastBurn, burnReason("fast", cfg.FastBurn, f))
	}
	if len(baseline) > 0 {
		alarm := latencyAlarm(cfg, &b.total)
		if alarm == 0 { // the step is young: read the baseline's whole span
			alarm = r.alarmThreshold(baseline, now)
		}
		r.setAlarm(targets, time.Duration(alarm)*time.Microsecond)
		pre := r.preStepCounts(baseline, since)
		bs := r.sinceStep(baseline, since, b.counts)
		if rule, reason := v.decisive(cfg, c, b, bs, pre, alarm, lv); rule != "" {
			return fail(rule, reason)
		}
	}
	if failed, reason := failRatio(cfg, rc, rb); failed {
		return fail(RuleFailRatio, reason)
	}
	if failingOnly {
		return v.decide(Inconclusive, "", "no failing rule fired (failing rules only)")
	}
	if f := burns.firing(cfg.SlowBurn, WindowSlowLong, WindowSlowShort); len(f) > 0 {
		return v.decide(Degraded, RuleSlowBurn, burnReason("slow", cfg.SlowBurn, f))
	}
	for _, s := range v.Signals {
		if s.Breached {
			return v.decide(Degraded, RuleSignal, fmt.Sprintf("signal %s on %s is %g, %s the gate's %g",
				s.Name, s.Cell, s.Value, s.Direction, s.Threshold))
		}
	}
	minReq := uint64(cfg.MinRequests)
	if c.Requests < minReq || (len(baseline) > 0 && b.Requests < minReq) {
		return v.decide(Inconclusive, RuleMinRequests, fmt.Sprintf(
			"not enough data: %d canary and %d baseline requests since %s, need %d each",
			c.Requests, b.Requests, since.Format(time.RFC3339), minReq))
	}
	if len(baseline) > 0 {
		if st, rule, reason := v.compare(cfg, c, b, lv); st != Healthy {
			return v.decide(st, rule, reason)
		}
	}
	for _, s := range v.Signals {
		if s.Missing {
			return v.decide(Inconclusive, RuleSignalMissing, fmt.Sprintf("signal %s on %s has no recent value", s.Name, s.Cell))
		}
	}
	return v.decide(Healthy, RuleNoRegression, fmt.Sprintf(
		"%d canary requests, error ratio %.4f vs baseline %.4f, p99 %v vs %v: no rule fired",
		c.Requests, v.Canary.ErrorRatio, v.BaselineStats.ErrorRatio, v.Canary.P99, v.BaselineStats.P99))
}

func (v Verdict) decide(s State, rule, reason string) Verdict {
	v.State, v.Rule, v.Reason = s, rule, reason
	return v
}

// recent returns the canary's and baseline's counts over the shortest
// suffix of FailWindow (whole intervals, newest first) in which the canary
// has FailMinRequests requests, or over all of FailWindow if it never has:
// the freshest reading that is big enough to trust, so a canary that
// breaks is caught within a second or two at moderate traffic.
func (r *Registry) recent(targets, baseline []string, now time.Time) (rc, rb *sample) {
	cfg := r.cfg.Load()
	n := cfg.slots(cfg.FailWindow)
	for k := int64(1); k <= n; k++ {
		from := r.windowStart(now, time.Duration(k)*cfg.Interval)
		rc = r.gather(targets, from, now, histNone)
		if rc.Requests >= uint64(cfg.FailMinRequests) || k == n {
			return rc, r.gather(baseline, from, now, histNone)
		}
	}
	return rc, rb // not reached: n ≥ 1
}

// failRatio is the FailRatio rule on the recent window.
func failRatio(cfg *Config, rc, rb *sample) (bool, string) {
	if rc.Requests < uint64(cfg.FailMinRequests) {
		return false, ""
	}
	pc := ratio(rc.AvailBad, rc.Requests)
	if pc < cfg.FailRatio {
		return false, ""
	}
	if rb.Requests > 0 {
		t := errorTest(rc.AvailBad, rc.Requests, rb.AvailBad, rb.Requests, cfg.ErrorTau, cfg.ErrorMargin, cfg.Alpha)
		if !t.Significant {
			return false, ""
		}
	}
	return true, fmt.Sprintf("error ratio %.4f over the last %v (%d of %d requests) ≥ fail ratio %.4f; baseline %.4f",
		pc, rc.to.Sub(rc.from).Round(time.Millisecond), rc.AvailBad, rc.Requests, cfg.FailRatio, ratio(rb.AvailBad, rb.Requests))
}

// compare runs the sequential canary-vs-baseline tests; Healthy means none
// found a regression.
func (v *Verdict) compare(cfg *Config, c, b *sample, lv levels) (State, string, string) {
	et := errorTest(c.AvailBad, c.Requests, b.AvailBad, b.Requests, cfg.ErrorTau, cfg.ErrorMargin, lv.errorRatio)
	lt := rankTest("latency", &c.total, &b.total, cfg.LatencyTau, cfg.LatencyMargin, lv.rank)
	v.Tests = append(v.Tests, et, lt)
	if et.Significant {
		return Degraded, RuleErrorRatio, fmt.Sprintf(
			"canary error ratio %.4f significantly above baseline %.4f (z %.2f, log LR %.2f ≥ %.2f)",
			v.Canary.ErrorRatio, v.BaselineStats.ErrorRatio, et.Z, et.LogLR, et.LogThreshold)
	}
	minN := int64(cfg.MinRequests)
	if reg, reason := latencyRegressed(lt, durUs(v.Canary.P99), durUs(v.BaselineStats.P99), cfg.P99Margin, durUs(cfg.p99MinDelta(cfg.LatencyThreshold)), minN); reg {
		return Degraded, RuleLatency, "latency " + reason
	}
	if cfg.TTFBThreshold > 0 {
		tt := rankTest("ttfb", &c.ttfb, &b.ttfb, cfg.LatencyTau, cfg.LatencyMargin, lv.rank)
		v.Tests = append(v.Tests, tt)
		if reg, reason := latencyRegressed(tt, c.ttfb.quantile(0.99), b.ttfb.quantile(0.99), cfg.P99Margin, durUs(cfg.p99MinDelta(cfg.TTFBThreshold)), minN); reg {
			return Degraded, RuleTTFB, "TTFB " + reason
		}
	}
	return Healthy, "", ""
}

// levels are the levels of the judge's tests: Alpha shared by the fleet's
// nodes (SetFleetSize) and, within a node, split (Bonferroni) between the
// tests that may fire: half to the steady arm of the decisive error test,
// the one that catches a broken release in a small step's first requests,
// and half evenly to the rest (its matched arm, the decisive latency test,
// the error-ratio and latency rank tests, and the TTFB rank test when a
// TTFB SLO is set). The steady arm's share buys about 0.7 nats, one canary
// request fewer at 30 % errors; the others pay 0.4–0.7 nats, which the
// slower degraded tests barely feel.
type levels struct {
	errorSteady, errorMatched, latencyDecisive, errorRatio, rank float64
}

func (r *Registry) levels(cfg *Config) levels {
	node := cfg.Alpha / float64(r.FleetSize())
	rest := 4.0
	if cfg.TTFBThreshold > 0 {
		rest = 5
	}
	each := node / 2 / rest
	return levels{errorSteady: node / 2, errorMatched: each, latencyDecisive: each, errorRatio: each, rank: each}
}

// latencyRegressed combines a rank test with the relative p99 margin.
func latencyRegressed(t TestResult, p99c, p99b int64, margin float64, minDelta, minN int64) (bool, string) {
	if !t.Significant || t.CanaryN < minN || t.BaselineN < minN {
		return false, ""
	}
	if float64(p99c) < float64(p99b)*(1+margin) || p99c-p99b < minDelta {
		return false, ""
	}
	return true, fmt.Sprintf("distribution significantly slower than baseline (P(slower) %.3f, log LR %.2f ≥ %.2f) and p99 %v ≥ %v × %.2f",
		0.5+t.Effect, t.LogLR, t.LogThreshold, time.Duration(p99c)*time.Microsecond, time.Duration(p99b)*time.Microsecond, 1+margin)
}

func burnReason(kind string, rule BurnRule, f []BurnRate) string {
	var parts []string
	for i := 0; i+1 < len(f); i += 2 {
		parts = append(parts, fmt.Sprintf("%s burn rate %.1f over %v and %.1f over %v",
			f[i].SLO, f[i].Rate, f[i].Length, f[i+1].Rate, f[i+1].Length))
	}
	return fmt.Sprintf("%s-burn rule (rate ≥ %g on both windows): %s", kind, rule.Rate, strings.Join(parts, "; "))
}

// p99MinDelta is P99MinDelta, or 5 % of the SLO's threshold when zero.
func (c *Config) p99MinDelta(threshold time.Duration) time.Duration {
	if c.P99MinDelta > 0 {
		return c.P99MinDelta
	}
	return threshold / 20
}
