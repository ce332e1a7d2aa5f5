package proxy

import (
	"cmp"
	"math"
	"slices"
)

// Endpoint priorities and weights (RFC 2782, from SRV records). A cell
// whose endpoints all have the defaults — priority 0, equal weights — has
// no tiers and keeps the plain power-of-two-choices path. Otherwise its
// endpoints are grouped by priority: the lowest priority with an endpoint
// in rotation takes every request ("a client MUST attempt to contact the
// target host with the lowest-numbered priority it can reach"), and within
// it endpoints are sampled in proportion to their weights, the two samples
// compared on outstanding requests per unit of weight. Lower priorities'
// endpoints keep their pools and health, so a tier that fails hands over
// at once and takes the traffic back when it is in rotation again.

// EndpointWeight is an endpoint's priority (lower is preferred) and weight
// within its priority.
type EndpointWeight struct {
	Priority int
	Weight   float64
}

// tier is one priority's endpoints with their effective weights.
type tier struct {
	prio int
	eps  []*endpoint
	w    []float64 // effective weight of eps[i] (> 0)
	cum  []float64 // running sums of w; the last is the total
}

// zeroWeightShare is the weight a 0-weight endpoint gets relative to the
// lightest non-zero one of its tier: RFC 2782 gives it "a very small
// chance of being selected" when others weigh more.
const zeroWeightShare = 1e-3

// buildTiers groups eps by priority (ascending), or returns nil when every
// endpoint has the defaults (weights maps each endpoint's address to its
// priority and weight; one it does not name has priority 0, weight 1).
func buildTiers(eps []*endpoint, weights map[string]EndpointWeight) []tier {
	if len(weights) == 0 {
		return nil
	}
	ws := make([]EndpointWeight, len(eps))
	plain := true
	for i, e := range eps {
		w, ok := weights[e.addr]
		if !ok {
			w = EndpointWeight{Weight: 1}
		}
		ws[i] = w
		plain = plain && w.Priority == ws[0].Priority && w.Weight == ws[0].Weight && w.Weight > 0
	}
	if plain {
		return nil
	}
	idx := make([]int, len(eps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ws[a].Priority, ws[b].Priority) })
	var tiers []tier
	for _, i := range idx {
		if n := len(tiers); n == 0 || tiers[n-1].prio != ws[i].Priority {
			tiers = append(tiers, tier{prio: ws[i].Priority})
		}
		t := &tiers[len(tiers)-1]
		t.eps, t.w = append(t.eps, eps[i]), append(t.w, ws[i].Weight)
	}
	for i := range tiers {
		tiers[i].settle()
	}
	return tiers
}

// settle turns the tier's weights into effective ones and their sums.
func (t *tier) settle() {
	lightest := math.Inf(1)
	for _, w := range t.w {
		if w > 0 {
			lightest = min(lightest, w)
		}
	}
	sum := 0.0
	t.cum = make([]float64, len(t.w))
	for i, w := range t.w {
		switch {
		case math.IsInf(lightest, 1): // all 0: equals
			w = 1
		case w <= 0:
			w = lightest * zeroWeightShare
		}
		t.w[i] = w
		sum += w
		t.cum[i] = sum
	}
}

// pickTiered is pickEndpoint for a cell with tiers: the first tier, in
// priority order, with an endpoint in rotation other than exclude.
func (c *cell) pickTiered(r uint64, exclude *endpoint, now func() int64) *endpoint {
	for i := range c.tiers {
		if e := c.tiers[i].pick(r, exclude, now); e != nil {
			return e
		}
	}
	return nil
}

// pick samples two endpoints by weight and takes the one with fewer
// outstanding requests per unit of weight; when both are out it scans the
// tier from the first sample. nil: nothing in rotation in this tier.
func (t *tier) pick(r uint64, exclude *endpoint, now func() int64) *endpoint {
	total := t.cum[len(t.cum)-1]
	i := t.sample(float64(r&0xffffffff) / (1 << 32) * total)
	j := t.sample(float64(r>>32) / (1 << 32) * total)
	a, b := t.eps[i], t.eps[j]
	okA := a != exclude && a.available(now)
	okB := b != exclude && b.available(now)
	switch {
	case okA && okB:
		if float64(b.outstanding.Load())*t.w[i] < float64(a.outstanding.Load())*t.w[j] {
			return b
		}
		return a
	case okA:
		return a
	case okB:
		return b
	}
	n := len(t.eps)
	for k := range n {
		if e := t.eps[(i+k)%n]; e != exclude && e.available(now) {
			return e
		}
	}
	return nil
}

// sample returns the index whose weight range holds x ∈ [0, total): the
// first whose running sum exceeds x (a binary search written out, so the
// request path makes no closure).
func (t *tier) sample(x float64) int {
	lo, hi := 0, len(t.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if t.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
