package slo

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// decisiveScenario is one fault of the reaction table.
type decisiveScenario struct {
	name     string
	fault    float64 // share of canary requests answered 500
	latScale float64 // canary latency factor (3: p99 +200 %)
	// maxServed bounds the p95 of canary requests served after onset (0:
	// none) and maxTime100 the p95 time to revert at 100 req/s. Issue 16's
	// goals are 5 requests for 100 % errors, 15 for 30 %, 1 s at 100 req/s.
	maxServed  int
	maxTime100 time.Duration
}

var decisiveScenarios = []decisiveScenario{
	{"100 % errors", 1, 1, 5, time.Second},
	{"30 % errors", 0.3, 1, 15, time.Second},
	{"10 % errors", 0.1, 1, 0, time.Second},
	{"p99 +200 % (128→384 ms)", 0, 3, 0, time.Second},
}

// decisiveRun is one rollout of the reaction table: 300 req/s of keyed
// traffic, the baseline (two cells) alone for 90 s, then the canary
// taking canaryRPS of it from its first request with the fault, the
// baseline the rest; onset is the step's start.
func decisiveRun(seed uint64, canaryRPS float64, sc decisiveScenario) simResult {
	const baseErr = 0.001
	w := newSimWorld(seed, simConfig())
	a := w.add(&simCell{name: "base-a", rps: 150, errRatio: baseErr, latScale: 1})
	b := w.add(&simCell{name: "base-b", rps: 150, errRatio: baseErr, latScale: 1})
	for range 90 { // a baseline serving for longer than DecisiveLookback
		w.second()
	}
	a.rps, b.rps = (300-canaryRPS)/2, (300-canaryRPS)/2
	canary := w.add(&simCell{name: "canary", rps: canaryRPS, errRatio: baseErr, latScale: sc.latScale, fault: sc.fault})
	r := newSimRollout(w, canary, []string{"base-a", "base-b"}, Failing, true)
	r.degradedReverts = true
	return r.run(2 * time.Minute)
}

// TestSimDecisiveReverts is the table in README.md ("Reverting at any
// canary traffic"): for each fault and canary rate, over 50 seeds, how many
// canary requests were served after onset until the canary's weight was 0,
// and how long that took, with the bounds of decisiveScenarios.
func TestSimDecisiveReverts(t *testing.T) {
	seeds := 50
	if raceEnabled {
		seeds = 3 // the path only; the figures come from the run without -race
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| fault | canary req/s | canary requests served after onset: median / p95 | time to weight 0: median / p95 | reverted by |\n|---|---|---|---|---|\n")
	for si, sc := range decisiveScenarios {
		for _, rps := range []float64{3, 15, 100} {
			res := simMany(seeds, func(i int) simResult { return decisiveRun(uint64(7000*si+int(rps)*100+i), rps, sc) })
			var served []int
			var times []time.Duration
			rules := map[string]int{}
			for i, r := range res {
				if r.revert < 0 {
					t.Errorf("%s at %v req/s, seed %d: not reverted in 2 minutes", sc.name, rps, i)
					continue
				}
				served = append(served, r.served)
				times = append(times, r.revert)
				rules[r.v.Rule]++
			}
			if len(served) == 0 {
				continue
			}
			slices.Sort(served)
			slices.Sort(times)
			p95 := func(n int) int { return min(n-1, (n*95+99)/100-1) }
			sMed, s95 := served[len(served)/2], served[p95(len(served))]
			tMed, t95 := times[len(times)/2], times[p95(len(times))]
			var rs []string
			for r, k := range rules {
				rs = append(rs, fmt.Sprintf("%s %d", r, k))
			}
			slices.Sort(rs)
			fmt.Fprintf(&b, "| %s | %g | %d / %d | %v / %v | %s |\n", sc.name, rps, sMed, s95,
				tMed.Round(time.Millisecond), t95.Round(time.Millisecond), strings.Join(rs, ", "))
			if raceEnabled {
				continue
			}
			if sc.maxServed > 0 && s95 > sc.maxServed {
				t.Errorf("%s at %v req/s: p95 of %d canary requests served, want ≤ %d", sc.name, rps, s95, sc.maxServed)
			}
			if rps == 100 && t95 > sc.maxTime100 {
				t.Errorf("%s at 100 req/s: p95 %v to revert, want ≤ %v", sc.name, t95, sc.maxTime100)
			}
		}
	}
	t.Log("\n" + b.String())
}

// TestSimBurstAfterStepNotBlamed: a fleet-wide error burst that starts
// right after a step, hitting baseline and canary alike (30 % errors for 3
// s, then healthy), must not make the decisive tests fail the canary: the
// baseline's requests over the same time show the burst too. (Comparing
// the canary with a baseline window reaching back before the step, as the
// first version did, blamed the canary in most runs.) At a third of the
// traffic (100 req/s) the baseline serves only twice the canary's
// requests: when the canary's first two are errors (9 % of runs) it has
// served about three, too few to show the burst, and a 100 %-error canary
// must be reverted on that much evidence (issue 16: ≤ 5 requests), so up
// to 10 % of those runs may fail the canary (6 of 100 measured). The fast-burn rule is absolute, not relative to baseline, so at
// 100 req/s, where the canary's 5 s window has enough requests, it fires;
// that rule is not what this test is about (the count is logged), and the
// run stops at the first failing verdict.
func TestSimBurstAfterStepNotBlamed(t *testing.T) {
	seeds := 100
	if raceEnabled {
		seeds = 2
	}
	for _, rps := range []float64{3, 15, 100} {
		res := simMany(seeds, func(i int) simResult { return burstRun(uint64(90000+int(rps)*1000+i), rps) })
		rules := map[string]int{}
		blamed := 0
		for i, r := range res {
			if r.fail < 0 {
				continue
			}
			rules[r.v.Rule]++
			if r.v.Rule == RuleErrorDecisive || r.v.Rule == RuleLatencyDecisive {
				blamed++
				t.Logf("canary at %v req/s, seed %d: a fleet-wide burst blamed on the canary after %v: %s", rps, i, r.fail, r.v.Reason)
			}
		}
		t.Logf("canary at %v req/s: %d runs, failing verdicts by rule: %v", rps, seeds, rules)
		allowed := 0
		if rps == 100 {
			allowed = seeds / 10
		}
		if !raceEnabled && blamed > allowed { // 2 runs under -race: the path only
			t.Errorf("canary at %v req/s: a fleet-wide burst right after the step was blamed on the canary by a decisive test in %d of %d runs, want ≤ %d", rps, blamed, seeds, allowed)
		}
	}
}

// burstRun is one rollout whose step begins as a fleet-wide burst of 30 %
// errors on every cell, lasting 3 s; it runs for a minute after onset.
func burstRun(seed uint64, canaryRPS float64) simResult {
	const baseErr = 0.001
	w := newSimWorld(seed, simConfig())
	a := w.add(&simCell{name: "base-a", rps: 150, errRatio: baseErr, latScale: 1})
	b := w.add(&simCell{name: "base-b", rps: 150, errRatio: baseErr, latScale: 1})
	for range 90 {
		w.second()
	}
	a.rps, b.rps = (300-canaryRPS)/2, (300-canaryRPS)/2
	canary := w.add(&simCell{name: "canary", rps: canaryRPS, errRatio: baseErr, latScale: 1})
	r := newSimRollout(w, canary, []string{"base-a", "base-b"}, Failing, true)
	r.perSecond = func(s int) {
		fault := 0.0
		if s < 3 {
			fault = 0.3
		}
		for _, c := range w.cells {
			c.fault = fault
		}
	}
	return r.run(time.Minute)
}
