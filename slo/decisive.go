package slo

import (
	"fmt"
	"math"
	"time"
)

// The decisive tests decide failing on evidence, not on sample size: they
// compare how many of the canary's requests since the step began were bad
// with the baseline's (over the same time, and for errors also before the
// step: see decisive below), and fail the canary as soon as
// its bad ratio is decisively above (1+DecisiveMargin) times the
// baseline's, however few requests that takes. Three 500s in the first four
// canary requests against a baseline at 0.1 % errors is enough; 5 of 100
// at a baseline of 4 % is not.
//
// The statistic is a universal-inference e-value (Wasserman, Ramdas and
// Balakrishnan, "Universal inference", PNAS 2020) for two binomial samples:
//
//	E = M(xc, nc) · M(xb, nb) / max{ L(pc; xc, nc) · L(pb; xb, nb) : pc ≤ k·pb }
//
// where L(p; x, n) = p^x (1−p)^(n−x) and M is L averaged over a fixed Beta
// prior (a Bayes factor numerator). For any (pc, pb) in the null, E is at
// most the likelihood ratio of the mixture against that one point, a
// nonnegative martingale of mean 1, so by Ville's inequality P(E ever ≥
// 1/α) ≤ α however often it is evaluated, with no normal approximation: it
// is exact for one request as for a million. The priors decide where the
// test is most sensitive: the canary's is Beta(1, 3) (a broken canary's
// ratio is anywhere from a few percent to all; its density 3(1−p)² puts
// 73 % of the mass on 5–50 %),
// the baseline's Beta(1/20, 1) puts its mass at
// small ratios, so a healthy baseline's rate costs little evidence to pin
// down (about 4–5 nats at 0.1 % errors over 10⁵ requests).

// Rules named in Verdict.Rule by the decisive tests.
const (
	RuleErrorDecisive   = "error_decisive"
	RuleLatencyDecisive = "latency_decisive"
)

// The priors of the decisive e-value (see above).
const (
	canaryPriorA, canaryPriorB     = 1.0, 3.0 // density 3(1−p)²: 73 % of its mass on 5–50 %: broken, not noisy
	baselinePriorA, baselinePriorB = 0.05, 1.0
)

// decisiveTest tests H0: canary bad ratio ≤ k × max(baseline bad ratio,
// floor) with xc bad of nc canary events and xb bad of nb baseline events;
// it is significant when ln E ≥ ln(1/alpha). The floor is the least
// baseline ratio the null grants: 0 for errors; for the latency test the
// 1 % of requests that are above a p99 by definition, so a baseline whose
// tail happens to be thin in the window does not make any slow canary
// request decisive. The null is the union of {pc ≤ k·pb} and {pc ≤ k·floor},
// and its maximum likelihood the larger of the two parts'. Effect is the
// canary's ratio minus the baseline's; Margin what H0 allows above it.
func decisiveTest(name string, xc, nc, xb, nb uint64, k, floor, alpha float64) TestResult {
	t := TestResult{Name: name, LogThreshold: math.Log(1 / alpha), CanaryN: int64(nc), BaselineN: int64(nb)}
	if nc == 0 || nb == 0 {
		return t
	}
	pc, pb := float64(xc)/float64(nc), float64(xb)/float64(nb)
	t.Effect, t.Margin = pc-pb, k*max(pb, floor)-pb
	if pc <= k*max(pb, floor) {
		return t // the unconstrained maximum is in the null: E ≤ 1
	}
	fxc, fnc, fxb, fnb := float64(xc), float64(nc), float64(xb), float64(nb)
	null := nullMaxLogLik(fxc, fnc, fxb, fnb, k)
	if floor > 0 {
		null = max(null, binLogLik(fxc, fnc, min(k*floor, 1))+binLogLik(fxb, fnb, pb))
	}
	num := logBetaBinomial(xc, nc, canaryPriorA, canaryPriorB) + logBetaBinomial(xb, nb, baselinePriorA, baselinePriorB)
	t.LogLR = num - null
	t.Significant = t.LogLR >= t.LogThreshold && xc >= minDecisiveBad
	return t
}

// minDecisiveBad is the fewest bad canary events a decisive test fails
// the canary on, however strong the e-value: against a baseline without
// a single error in its last thousands of requests, the canary's first
// 500 alone reaches the steady arm's level, and one bad response (a cold
// connection, one unlucky request) is an anecdote, not a broken release.
// A broken release errs again within a few requests (at 30 % errors, the
// second error comes by the 14th request in 95 % of runs).
const minDecisiveBad = 2

// binLogLik is ln L(p; x, n) = x ln p + (n−x) ln(1−p).
func binLogLik(x, n, p float64) float64 { return xlogy(x, p) + xlogy(n-x, 1-p) }

// latencyTailShare is the share of baseline requests above its p99 by
// definition: the decisive latency test's floor.
const latencyTailShare = 0.01

// logBetaBinomial is ln ∫ p^x (1−p)^(n−x) dBeta(a, b)(p) = ln B(a+x, b+n−x) − ln B(a, b).
func logBetaBinomial(x, n uint64, a, b float64) float64 {
	return logBeta(a+float64(x), b+float64(n-x)) - logBeta(a, b)
}

func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// xlogy is x·ln y with 0·ln 0 = 0.
func xlogy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(y)
}

// nullMaxLogLik maximises ln L(k·p; xc, nc) + ln L(p; xb, nb) over the
// boundary pc = k·pb, p in (0, 1/k] (the caller has checked that the
// unconstrained maximum lies outside the null, so the constrained one is on
// the boundary). The function is concave in p; its derivative is found
// zero by bisection.
func nullMaxLogLik(xc, nc, xb, nb, k float64) float64 {
	f := func(p float64) float64 { return binLogLik(xc, nc, k*p) + binLogLik(xb, nb, p) }
	grad := func(p float64) float64 {
		g := (xc + xb) / p
		if nc > xc {
			g -= k * (nc - xc) / (1 - k*p)
		}
		if nb > xb {
			g -= (nb - xb) / (1 - p)
		}
		return g
	}
	hi := 1 / k
	if grad(hi*(1-1e-12)) >= 0 {
		return f(hi)
	}
	lo := 0.0
	for range 100 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if grad(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return f((lo + hi) / 2)
}

// preStep is the baseline's bad and total counts before a step, the
// material of the decisive error test's steady arm: recent (the newer half
// of DecisiveLookback, ending with the interval before the one the step
// began in) is what the null hypothesis must explain; older (the half
// before it) only sharpens the numerator's guess of the baseline's ratio
// (see steadyTest). Both are fixed once the step has begun.
type preStep struct {
	recent, older counts
}

// preStepCounts reads the baseline's counts before a step that began at
// since (nothing of the interval holding since: it may hold the step's
// first requests).
func (r *Registry) preStepCounts(baseline []string, since time.Time) preStep {
	cfg := r.cfg.Load()
	iv := int64(cfg.Interval)
	step := time.Unix(0, since.UnixNano()/iv*iv)
	half := time.Duration(cfg.slots(cfg.DecisiveLookback/2)) * cfg.Interval
	recent := r.gather(baseline, step.Add(-half), step.Add(-1), histNone)
	older := r.gather(baseline, step.Add(-2*half), step.Add(-half-1), histNone)
	return preStep{recent: recent.counts, older: older.counts}
}

// sinceStep is the baseline's counts since a step that began at since,
// from b, its counts over the whole intervals from the one holding since.
// That first interval also holds requests from before the step (the count
// ring's intervals are 1 s wide), which would dilute a burst that starts
// with the step, so each local baseline cell's first interval is replaced
// by its counts since since from the fine ring (50 ms slots) while it
// still holds them (fineReach intervals). Of the fine slot holding since,
// the requests are prorated to the part after since, as if evenly spread,
// and all bad responses kept: a burst starting with the step is seen at
// full strength, and an error from before it (one in a 50 ms slot) only
// makes the baseline look worse, which can delay a revert, not cause one.
// Other nodes' data (complete intervals) keeps the whole first interval.
func (r *Registry) sinceStep(baseline []string, since time.Time, b counts) counts {
	iv := int64(r.cfg.Load().Interval)
	fw := iv / fineParts
	s0 := since.UnixNano()
	first, fine0 := s0/iv, s0/fw
	after := 1 - float64(s0%fw)/float64(fw)
	for _, name := range baseline {
		c := r.lookup(name)
		if c == nil || !c.fine.holds(fine0) {
			continue
		}
		whole := c.counts.sum(first, first)
		part := c.fine.sum(fine0+1, ((first+1)*iv-1)/fw)
		edge := c.fine.sum(fine0, fine0)
		part.Requests += uint64(math.Round(after * float64(edge.Requests)))
		part.AvailBad += edge.AvailBad
		b.Requests -= min(b.Requests, whole.Requests-min(whole.Requests, part.Requests))
		b.AvailBad -= min(b.AvailBad, whole.AvailBad-min(whole.AvailBad, part.AvailBad))
	}
	return b
}

// The fine ring (Cell.fine): fineParts slots per interval, fineReach
// intervals long (13 KB per cell).
const (
	fineParts = 20
	fineReach = 10
)

// steadyTest is the decisive test against the baseline's steady ratio,
// learned before the step: H0: canary bad ratio ≤ k × the baseline's ratio
// over pre.recent. Its e-value is
//
//	E = M(xc, nc) · P(recent | older) / max{ L(pc; xc, nc) · L(pb; recent) : pc ≤ k·pb }
//
// where P(recent | older) is the Beta-mixture's predictive probability of
// the recent pre-step counts given the older ones (M(older ∪ recent) /
// M(older)): the numerator has learnt the baseline's ratio from data the
// null does not fit, so it pays almost nothing for it (the plain mixture
// M(recent) pays 3 nats at 3 errors in 3000). The older counts are
// independent of the rest, so E is an e-value as decisiveTest's is.
// Without pre-step data it says nothing (LogLR 0).
func steadyTest(name string, xc, nc uint64, pre preStep, k, alpha float64, minBad uint64) TestResult {
	xb, nb := pre.recent.AvailBad, pre.recent.Requests
	t := TestResult{Name: name, LogThreshold: math.Log(1 / alpha), CanaryN: int64(nc), BaselineN: int64(nb)}
	if nc == 0 || nb == 0 {
		return t
	}
	pc, pb := float64(xc)/float64(nc), float64(xb)/float64(nb)
	t.Effect, t.Margin = pc-pb, k*pb-pb
	if pc <= k*pb {
		return t
	}
	x1, n1 := pre.older.AvailBad, pre.older.Requests
	predictive := logBetaBinomial(x1+xb, n1+nb, baselinePriorA, baselinePriorB) - logBetaBinomial(x1, n1, baselinePriorA, baselinePriorB)
	num := logBetaBinomial(xc, nc, canaryPriorA, canaryPriorB) + predictive
	t.LogLR = num - nullMaxLogLik(float64(xc), float64(nc), float64(xb), float64(nb), k)
	t.Significant = t.LogLR >= t.LogThreshold && xc >= minBad
	return t
}

// Names of the decisive error test's parts in Verdict.Tests.
const (
	testErrorSteady  = "error_decisive"         // canary since the step vs baseline's steady ratio before it
	testErrorMatched = "error_decisive_matched" // canary vs baseline over the same time
	testBaselineMove = "baseline_shift"         // baseline since the step vs before it: the steady arm's guard
)

// decisive runs the decisive tests on the canary (c) since the step began
// against the baseline (b over the same time, bs its counts by sinceStep;
// pre, its counts before the step): bad responses from the count rings, and requests slower than
// alarmUs (the latency alarm, 0: unknown) from the histograms (which hold
// at most HistogramSpan, live slice included). It returns the failing rule
// and its reason, or "" when none is decisive.
//
// The error test has two arms. The matched arm compares the canary with
// the baseline over the same time, whatever happens to both (a fleet-wide
// burst raises both alike); valid always, but in a step's first second the
// baseline's same-time sample is too small to pin its ratio down (100 %
// errors at a third of the traffic takes 9 canary requests). The steady
// arm compares the canary with the baseline's ratio before the step, which
// thousands of requests pin down, so 2 errors in 14 requests at 0.1 %
// baseline errors can be decisive. It relies on the baseline being steady,
// so it is only consulted while the baseline's own requests since the step
// are not at least suggestively worse than before (baselineShift, at the
// far weaker level ShiftAlpha): a burst that hits canary and baseline alike
// shows first in the baseline, which serves more requests than a small
// canary, and switches the steady arm off.
func (v *Verdict) decisive(cfg *Config, c, b *sample, bs counts, pre preStep, alarmUs int64, lv levels) (rule, reason string) {
	k := 1 + cfg.DecisiveMargin
	shift := steadyTest(testBaselineMove, bs.AvailBad, bs.Requests, pre, k, shiftAlpha, 1)
	v.Tests = append(v.Tests, shift)
	if !shift.Significant {
		st := steadyTest(testErrorSteady, c.AvailBad, c.Requests, pre, k, lv.errorSteady, minDecisiveBad)
		v.Tests = append(v.Tests, st)
		if st.Significant {
			return RuleErrorDecisive, fmt.Sprintf(
				"canary errors decisively above %g× baseline's before the step: %d of %d vs %d of %d (log e-value %.2f ≥ %.2f)",
				k, c.AvailBad, c.Requests, pre.recent.AvailBad, pre.recent.Requests, st.LogLR, st.LogThreshold)
		}
	}
	et := decisiveTest(testErrorMatched, c.AvailBad, c.Requests, bs.AvailBad, bs.Requests, k, 0, lv.errorMatched)
	v.Tests = append(v.Tests, et)
	if et.Significant {
		return RuleErrorDecisive, fmt.Sprintf(
			"canary errors decisively above %g× baseline's over the same time: %d of %d vs %d of %d (log e-value %.2f ≥ %.2f)",
			k, c.AvailBad, c.Requests, bs.AvailBad, bs.Requests, et.LogLR, et.LogThreshold)
	}
	if alarmUs == 0 {
		return "", ""
	}
	xc, xb := c.total.countAbove(alarmUs), b.total.countAbove(alarmUs)
	lt := decisiveTest(RuleLatencyDecisive, uint64(xc), uint64(c.total.n), uint64(xb), uint64(b.total.n), k, latencyTailShare, lv.latencyDecisive)
	v.Tests = append(v.Tests, lt)
	if lt.Significant {
		return RuleLatencyDecisive, fmt.Sprintf(
			"canary requests slower than %v (baseline p99 with margins) decisively above %g× baseline's share (at least 1 %%): %d of %d vs %d of %d (log e-value %.2f ≥ %.2f)",
			time.Duration(alarmUs)*time.Microsecond, k, xc, c.total.n, xb, b.total.n, lt.LogLR, lt.LogThreshold)
	}
	return "", ""
}

// shiftAlpha is the level at which the baseline's requests since the step
// count as worse than before, switching the steady arm off. It guards, it
// never reverts, so it is lenient (log e-value ≥ ln 2: one error in the
// baseline's first ten requests since the step is enough for a while): a
// burst that could make the canary look decisive (at a level 200 times
// stricter, on fewer requests) trips it first, unless the canary serves
// so much of the traffic that the baseline has served too few requests to
// show it (at a third of the traffic, 6 runs in 100 of
// TestSimBurstAfterStepNotBlamed: the canary's first two requests failed).
const shiftAlpha = 0.5

// alarmThreshold is the latency alarm (µs) of cells judged against base:
// latencyAlarm over the baseline's last HistogramSpan (0: unknown).
func (r *Registry) alarmThreshold(base []string, now time.Time) int64 {
	cfg := r.cfg.Load()
	s := r.gather(base, now.Add(-cfg.HistogramSpan), now, histTotal)
	defer s.release()
	return latencyAlarm(cfg, &s.total)
}

// latencyAlarm is the latency (µs) a canary request must exceed to count
// as slow for the decisive latency test and the latency alarm: baseline's
// p99 raised by P99Margin and by at least the absolute floor P99MinDelta,
// so a fast service's sub-millisecond jitter is never "slow". 0 when the
// baseline has too few samples for a p99 (fewer than minP99Samples).
func latencyAlarm(cfg *Config, base *dist) int64 {
	if base.n < minP99Samples {
		return 0
	}
	p99 := base.quantile(0.99)
	return max(int64(float64(p99)*(1+cfg.P99Margin)), p99+durUs(cfg.p99MinDelta(cfg.LatencyThreshold)))
}

// minP99Samples is the fewest baseline samples a p99 is read from: with
// fewer, the "99th percentile" is one of the last two values.
const minP99Samples = 200
