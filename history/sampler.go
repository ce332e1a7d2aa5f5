package history

// CellReading is what a Sampler reads of one cell at the end of a second.
type CellReading struct {
	Name string
	// Requests and Errors are lifetime counts (the sampler takes the
	// difference from the previous second's).
	Requests, Errors uint64
	// P50 and P99 (ms) are the latencies of the SLO engine's current
	// histogram slice (slo.interval, 5 s by default): a per-second
	// percentile would need a histogram per cell per second, which the
	// engine does not keep. So a point's percentiles are those of the
	// requests from the slice's start to the end of the second — 1 to 5 s
	// of requests — not of the second alone.
	P50, P99 float64
	Weight   float64
}

// Sampler turns a node's per-second readings into points. It is not safe
// for concurrent use: one goroutine calls Sample each second.
type Sampler struct {
	Store *Store
	prev  map[string][2]uint64 // cell → lifetime requests, errors at the last sample
}

// Sample adds one point per cell for second t: the requests and errors
// since the previous Sample (none for a cell's first), the share of the
// second's requests each cell served, and the reading's percentiles and
// weight.
func (s *Sampler) Sample(t int64, cells []CellReading) {
	if s.prev == nil {
		s.prev = map[string][2]uint64{}
	}
	deltas := make([][2]uint64, len(cells))
	var total uint64
	for i, c := range cells {
		if p, ok := s.prev[c.Name]; ok && c.Requests >= p[0] && c.Errors >= p[1] {
			deltas[i] = [2]uint64{c.Requests - p[0], c.Errors - p[1]}
		}
		s.prev[c.Name] = [2]uint64{c.Requests, c.Errors}
		total += deltas[i][0]
	}
	for i, c := range cells {
		p := Point{T: t, Requests: deltas[i][0], Errors: deltas[i][1], Weight: c.Weight}
		if p.Requests > 0 {
			p.ErrorRatio = float64(p.Errors) / float64(p.Requests)
			p.P50, p.P99 = c.P50, c.P99
		}
		if total > 0 {
			p.Share = float64(p.Requests) / float64(total)
		}
		s.Store.Add(c.Name, p)
	}
}
