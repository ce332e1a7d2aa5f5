package history

// Point is one cell's second (or, downsampled, one bucket of seconds).
type Point struct {
	// T is the second the point covers, as Unix seconds (a bucket: its
	// first second).
	T int64 `json:"t"`
	// Requests finished in the second; Errors among them (5xx and answers
	// the proxy made itself).
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// ErrorRatio is Errors / Requests (0 without requests).
	ErrorRatio float64 `json:"error_ratio"`
	// P50 and P99 are total latencies in milliseconds over the SLO engine's
	// histogram slices that cover the second (CellReading says why), 0
	// without requests.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	// Weight is the cell's routing weight at the end of the second (a
	// flag variant's: its weight among the flag's variants).
	Weight float64 `json:"weight"`
	// Share is the cell's part of all requests this node served in the
	// second, 0 to 1 (it differs from weight / total weight while session
	// pins hold and while a cell is down); a variant's cohort's part of the
	// requests its flag recorded (CellReading.Group).
	Share float64 `json:"share"`
	// WeightShare is Weight / the sum of its group's weights, 0 to 1: the
	// share of traffic the weights give the cell — for a flag variant its
	// configured or rolled-out percentage / 100. Added after the first
	// release of this document, so absent (0) from older journalled points.
	WeightShare float64 `json:"weight_share"`
}

// Downsample folds points (oldest first, one cell) into buckets of step
// seconds aligned to multiples of step: requests and errors are summed, the
// error ratio recomputed from them, p50 and share averaged weighted by
// requests (plain mean when a bucket had none), p99 is the bucket's
// highest (a tail is never averaged away), weight and weight share the
// bucket's last.
func Downsample(points []Point, step int64) []Point {
	if step <= 1 {
		return append([]Point(nil), points...)
	}
	var out []Point
	var b bucket
	for _, p := range points {
		start := p.T - mod(p.T, step)
		if b.n > 0 && start != b.p.T {
			out = append(out, b.point())
			b = bucket{}
		}
		if b.n == 0 {
			b.p.T = start
		}
		b.add(p)
	}
	if b.n > 0 {
		out = append(out, b.point())
	}
	return out
}

// bucket accumulates the points of one Downsample bucket.
type bucket struct {
	p                  Point
	n                  float64 // points
	p50Sum, shareSum   float64 // plain sums
	p50Wsum, shareWsum float64 // sums weighted by requests
}

func (b *bucket) add(p Point) {
	b.n++
	b.p.Requests += p.Requests
	b.p.Errors += p.Errors
	b.p.P99 = max(b.p.P99, p.P99)
	b.p.Weight = p.Weight
	b.p.WeightShare = p.WeightShare
	b.p50Sum += p.P50
	b.shareSum += p.Share
	b.p50Wsum += p.P50 * float64(p.Requests)
	b.shareWsum += p.Share * float64(p.Requests)
}

func (b *bucket) point() Point {
	p := b.p
	if r := float64(p.Requests); r > 0 {
		p.P50, p.Share = b.p50Wsum/r, b.shareWsum/r
		p.ErrorRatio = float64(p.Errors) / r
	} else {
		p.P50, p.Share = b.p50Sum/b.n, b.shareSum/b.n
	}
	return p
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
