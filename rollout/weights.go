package rollout

import (
	"maps"
	"math"
)

// Weights are cell name → weight. A weight is any non-negative number; the
// balancer's weighted rendezvous hashing turns relative weights into shares.
type Weights = map[string]float64

// weightEpsilon absorbs float rounding when comparing weights.
const weightEpsilon = 1e-9

// total returns T, the sum of the pre-rollout weights of the plan's cells:
// the amount of weight a plan moves around. Steps and the per-tick cap are
// shares of it.
func total(p *Plan, w0 Weights) float64 {
	var t float64
	for _, c := range p.cells() {
		t += w0[c]
	}
	return t
}

// stepWeights returns the weights of the plan's cells when pct % of the
// plan's traffic goes to the targets. It is pure and defined for pct in
// [0, 100]; pct 0 gives back w0 for canary and bluegreen.
func stepWeights(p *Plan, w0 Weights, pct float64) Weights {
	switch p.Strategy {
	case StrategyRolling:
		return rollingWeights(p, w0, pairsSwitched(pct, len(p.Targets)))
	case StrategyBlueGreen:
		return blueGreenWeights(p, w0, pct)
	default:
		return canaryWeights(p, w0, pct)
	}
}

// canaryWeights: targets together get pct % of T, split equally; the
// baseline gets the rest in proportion to its pre-rollout weights (equally
// when those are all 0).
func canaryWeights(p *Plan, w0 Weights, pct float64) Weights {
	if pct <= 0 {
		return pick(w0, p.cells())
	}
	t := total(p, w0)
	out := make(Weights, len(p.Targets)+len(p.Baseline))
	for _, c := range p.Targets {
		out[c] = t * pct / 100 / float64(len(p.Targets))
	}
	rest := t * (100 - pct) / 100
	var b float64
	for _, c := range p.Baseline {
		b += w0[c]
	}
	for _, c := range p.Baseline {
		if b > 0 {
			out[c] = rest * w0[c] / b
		} else {
			out[c] = rest / float64(len(p.Baseline))
		}
	}
	return out
}

// pairsSwitched is how many of n pairs a rolling step of pct % switches:
// rounded up, so every step switches at least one pair (25 % of 3 is 1).
func pairsSwitched(pct float64, n int) int {
	k := int(math.Ceil(pct*float64(n)/100 - weightEpsilon))
	return min(max(k, 0), n)
}

// rollingWeights switches the first k pairs whole: the target takes its
// pair's pre-rollout weight and the baseline cell goes to 0.
func rollingWeights(p *Plan, w0 Weights, k int) Weights {
	out := pick(w0, p.cells())
	for i := range k {
		t, b := p.Targets[i], p.Baseline[i]
		out[t] = w0[t] + w0[b]
		out[b] = 0
	}
	return out
}

// blueGreenWeights splits each blue/green pair's pre-rollout weight pct %
// green, so every pair keeps its share of traffic while its twin bakes.
func blueGreenWeights(p *Plan, w0 Weights, pct float64) Weights {
	out := make(Weights, len(p.Targets)+len(p.Baseline))
	for i, g := range p.Targets {
		b := p.Baseline[i]
		pair := w0[g] + w0[b]
		if pct <= 0 {
			out[g], out[b] = w0[g], w0[b]
			continue
		}
		out[g] = pair * pct / 100
		out[b] = pair * (100 - pct) / 100
	}
	return out
}

// rampToward moves cur toward goal by at most maxDelta weight on any one cell,
// interpolating every cell by the same fraction so the shares move together.
// maxDelta <= 0 means no cap. It reports whether goal was reached.
func rampToward(cur, goal Weights, maxDelta float64) (Weights, bool) {
	var far float64
	for c, g := range goal {
		far = max(far, math.Abs(g-cur[c]))
	}
	if maxDelta <= 0 || far <= maxDelta+weightEpsilon {
		return maps.Clone(goal), true
	}
	f := maxDelta / far
	out := make(Weights, len(goal))
	for c, g := range goal {
		out[c] = cur[c] + f*(g-cur[c])
	}
	return out, false
}

// sameWeights reports whether a and b give the same weight to every cell
// either names (a missing cell counts as 0).
func sameWeights(a, b Weights) bool {
	for c, w := range a {
		if math.Abs(w-b[c]) > weightEpsilon {
			return false
		}
	}
	for c, w := range b {
		if math.Abs(w-a[c]) > weightEpsilon {
			return false
		}
	}
	return true
}

// pick returns the weights of the named cells.
func pick(w Weights, cells []string) Weights {
	out := make(Weights, len(cells))
	for _, c := range cells {
		out[c] = w[c]
	}
	return out
}
