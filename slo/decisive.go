package slo

import (
	"fmt"
	"math"
	"time"
)

// The decisive tests decide failing on evidence, not on sample size: they
// compare how many of the canary's requests since the step began were bad
// with the baseline's over the same time, and fail the canary as soon as
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
// test is most sensitive: the canary's is Beta(1/2, 2) (a broken canary's
// ratio is anywhere from a few percent to all; this weighs 5–50 % most),
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
	canaryPriorA, canaryPriorB     = 0.5, 2.0 // most of its mass on 5–50 %: broken, not noisy
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
	t.Significant = t.LogLR >= t.LogThreshold
	return t
}

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

// decisive runs the decisive tests on the canary (c) since the step began
// against the baseline: bad responses from the count rings (the baseline's
// from DecisiveLookback before the step, bl), and requests slower than
// alarmUs (the latency alarm, 0: unknown) from the histograms (which hold
// at most HistogramSpan, live slice included; the baseline's since the
// step, b). It returns the failing rule and its reason, or "" when neither
// is decisive.
func (v *Verdict) decisive(cfg *Config, c, b, bl *sample, alarmUs int64, alpha float64) (rule, reason string) {
	k := 1 + cfg.DecisiveMargin
	et := decisiveTest(RuleErrorDecisive, c.AvailBad, c.Requests, bl.AvailBad, bl.Requests, k, 0, alpha)
	v.Tests = append(v.Tests, et)
	if et.Significant {
		return RuleErrorDecisive, fmt.Sprintf(
			"canary errors decisively above %g× baseline's: %d of %d vs %d of %d (log e-value %.2f ≥ %.2f)",
			k, c.AvailBad, c.Requests, bl.AvailBad, bl.Requests, et.LogLR, et.LogThreshold)
	}
	if alarmUs == 0 {
		return "", ""
	}
	xc, xb := c.total.countAbove(alarmUs), b.total.countAbove(alarmUs)
	lt := decisiveTest(RuleLatencyDecisive, uint64(xc), uint64(c.total.n), uint64(xb), uint64(b.total.n), k, latencyTailShare, alpha)
	v.Tests = append(v.Tests, lt)
	if lt.Significant {
		return RuleLatencyDecisive, fmt.Sprintf(
			"canary requests slower than %v (baseline p99 with margins) decisively above %g× baseline's share (at least 1 %%): %d of %d vs %d of %d (log e-value %.2f ≥ %.2f)",
			time.Duration(alarmUs)*time.Microsecond, k, xc, c.total.n, xb, b.total.n, lt.LogLR, lt.LogThreshold)
	}
	return "", ""
}

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
