package slo

import "math"

// TestResult is the outcome of one sequential comparison of canary against
// baseline, kept in the verdict for the audit record.
type TestResult struct {
	// Name is "error_ratio", "latency" or "ttfb" (degraded tests);
	// "error_decisive" (steady arm), "error_decisive_matched",
	// "latency_decisive" (decisive tests); or "baseline_shift" (the steady
	// arm's guard: significant means the baseline got worse since the
	// step and the steady arm was not consulted).
	Name string `json:"name"`
	// Effect is the estimated regression: canary minus baseline bad ratio
	// for error_ratio; P(canary slower than baseline) − ½ for the rank
	// tests. Positive means the canary is worse.
	Effect float64 `json:"effect"`
	// Margin is the null hypothesis' allowance, in Effect's units: the
	// test asks whether Effect exceeds Margin.
	Margin float64 `json:"margin"`
	// Z is (Effect − Margin) over its standard error under H0.
	Z float64 `json:"z"`
	// LogLR is the log of the mixture likelihood ratio; the test rejects
	// "canary no worse" when it reaches LogThreshold = ln(1/alpha).
	LogLR        float64 `json:"log_lr"`
	LogThreshold float64 `json:"log_threshold"`
	Significant  bool    `json:"significant"`
	// CanaryN and BaselineN are the sample sizes compared.
	CanaryN   int64 `json:"canary_n"`
	BaselineN int64 `json:"baseline_n"`
}

// msprt is the normal mixture sequential probability ratio test (Robbins
// 1970; Johari et al., "Always Valid Inference", 2017). For an effect
// estimate theta with variance v under H0 and a N(0, tau²) mixture over
// the alternative, the likelihood ratio
//
//	Λ = sqrt(v/(v+τ²)) · exp(τ²θ² / (2v(v+τ²)))
//
// is a martingale under H0, so by Ville's inequality P(Λ ever ≥ 1/α) ≤ α
// however often it is looked at. We reject only for theta > 0 (the canary
// is worse), which keeps the level at α.
func msprt(name string, effect, margin, v, tau, alpha float64, nc, nb int64) TestResult {
	t := TestResult{Name: name, Effect: effect, Margin: margin, LogThreshold: math.Log(1 / alpha), CanaryN: nc, BaselineN: nb}
	theta := effect - margin
	if v <= 0 || math.IsNaN(v) || math.IsNaN(theta) {
		return t
	}
	t.Z = theta / math.Sqrt(v)
	t2 := tau * tau
	t.LogLR = 0.5*math.Log(v/(v+t2)) + t2*theta*theta/(2*v*(v+t2))
	t.Significant = theta > 0 && t.LogLR >= t.LogThreshold
	return t
}

// errorTest compares bad ratios: xc of nc canary requests against xb of nb
// baseline requests, testing H0: p_canary ≤ (1+margin)·p_baseline (a
// relative non-inferiority margin: real services' errors are burstier than
// a binomial, and a 10 % relative difference in a 0.1 % error ratio is not
// worth a revert). The variance uses the pooled ratio with one event of
// continuity, which keeps the normal approximation from over-reacting to
// the first errors of a rare-error service.
func errorTest(xc, nc, xb, nb uint64, tauRel, margin, alpha float64) TestResult {
	if nc == 0 || nb == 0 {
		return TestResult{Name: "error_ratio", LogThreshold: math.Log(1 / alpha)}
	}
	pc, pb := float64(xc)/float64(nc), float64(xb)/float64(nb)
	p := (float64(xc+xb) + 1) / (float64(nc+nb) + 2)
	k := 1 + margin
	v := p * (1 - p) * (1/float64(nc) + k*k/float64(nb))
	return msprt("error_ratio", pc-pb, margin*pb, v, tauRel*p, alpha, int64(nc), int64(nb))
}

// rankTest is the Mann–Whitney U test on two histograms (ties within a
// bucket count half, with the tie-corrected variance), as Kayenta's judge
// does, run as a mixture SPRT on the AUC scale: theta = P(canary value >
// baseline value) + ½P(equal) − ½.
func rankTest(name string, canary, base *dist, tau, margin, alpha float64) TestResult {
	n1, n2 := float64(canary.n), float64(base.n)
	if n1 == 0 || n2 == 0 {
		return TestResult{Name: name, LogThreshold: math.Log(1 / alpha), CanaryN: canary.n, BaselineN: base.n}
	}
	var u, below, ties float64
	for ci := range histChunks {
		cc, bc := canary.chunks[ci], base.chunks[ci]
		if cc == nil && bc == nil {
			continue
		}
		for j := range histHalf {
			var a, b float64
			if cc != nil {
				a = float64(cc[j])
			}
			if bc != nil {
				b = float64(bc[j])
			}
			if a == 0 && b == 0 {
				continue
			}
			u += a * (below + b/2)
			below += b
			t := a + b
			ties += t*t*t - t
		}
	}
	n := n1 + n2
	varU := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	scale := n1 * n2
	return msprt(name, u/scale-0.5, margin, varU/(scale*scale), tau, alpha, canary.n, base.n)
}
