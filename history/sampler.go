package history

// CellReading is what a Sampler reads of one cell at the end of a second.
type CellReading struct {
	Name string
	// Requests and Errors are lifetime counts (the sampler takes the
	// difference from the previous second's).
	Requests, Errors uint64
	// P50 and P99 (ms) are the latencies of the SLO engine's histogram
	// slices (slo.interval, 5 s by default) that cover the second just
	// ended: a per-second percentile would need a histogram per cell per
	// second, which the engine does not keep. So a point's percentiles are
	// those of the whole intervals overlapping the last second and the
	// partial one now running — at least the second, at most a second
	// plus two intervals of requests — not of the second alone.
	P50, P99 float64
	Weight   float64
	// Group is the traffic the reading's shares are parts of: "" for the
	// routing cells (each request is served by one), a flag's name for its
	// variants' cohorts (each request of the flag is in one variant's).
	// Share and WeightShare are computed among readings of one group.
	Group string
}

// Sampler turns a node's per-second readings into points. It is not safe
// for concurrent use: one goroutine calls Sample each second.
type Sampler struct {
	Store *Store
	prev  map[string][2]uint64 // cell → lifetime requests, errors at the last sample
	last  int64                // the second of the last sample; 0: none yet
}

// Sample adds one point per cell for second t: the requests and errors
// since the previous Sample (none for a cell's first), the share of its
// group's requests in the second each cell served, its weight's share of
// its group's weights, and the reading's percentiles and weight. A second already sampled (a ticker that fired late and then on
// time reads the same wall-clock second twice) or one before it is
// skipped: its requests stay in the lifetime counts and fall into the next
// second's point, so each cell's seconds are distinct and increasing.
func (s *Sampler) Sample(t int64, cells []CellReading) {
	if s.prev == nil {
		s.prev = map[string][2]uint64{}
	}
	if s.last != 0 && t <= s.last {
		return
	}
	s.last = t
	deltas := make([][2]uint64, len(cells))
	type sums struct {
		requests uint64
		weight   float64
	}
	groups := map[string]sums{}
	for i, c := range cells {
		if p, ok := s.prev[c.Name]; ok && c.Requests >= p[0] && c.Errors >= p[1] {
			deltas[i] = [2]uint64{c.Requests - p[0], c.Errors - p[1]}
		}
		s.prev[c.Name] = [2]uint64{c.Requests, c.Errors}
		g := groups[c.Group]
		g.requests += deltas[i][0]
		g.weight += c.Weight
		groups[c.Group] = g
	}
	for i, c := range cells {
		p := Point{T: t, Requests: deltas[i][0], Errors: deltas[i][1], Weight: c.Weight}
		if p.Requests > 0 {
			p.ErrorRatio = float64(p.Errors) / float64(p.Requests)
			p.P50, p.P99 = c.P50, c.P99
		}
		g := groups[c.Group]
		if g.requests > 0 {
			p.Share = float64(p.Requests) / float64(g.requests)
		}
		if g.weight > 0 {
			p.WeightShare = c.Weight / g.weight
		}
		s.Store.Add(c.Name, p)
	}
}
