package slo

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Stats are merged statistics of a set of cells over a window. Counts come
// from the count ring (the whole window); percentiles from the histogram
// ring (the last HistogramSpan of the window at most: see LatencyFrom).
type Stats struct {
	Cells []string  `json:"cells"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`

	Requests uint64 `json:"requests"`
	// AvailabilityBad counts 5xx responses and proxy errors.
	AvailabilityBad uint64 `json:"availability_bad"`
	// LatencyBad counts requests slower than the latency threshold.
	LatencyBad uint64 `json:"latency_bad"`
	// TTFBBad counts requests whose TTFB exceeded the TTFB threshold.
	TTFBBad uint64 `json:"ttfb_bad"`

	ErrorRatio      float64 `json:"error_ratio"`
	LatencyBadRatio float64 `json:"latency_bad_ratio"`
	TTFBBadRatio    float64 `json:"ttfb_bad_ratio"`

	// LatencyFrom is where the histogram data starts (the histogram ring
	// is shorter than the count ring); LatencySamples how many requests
	// the percentiles are computed from.
	LatencyFrom    time.Time     `json:"latency_from"`
	LatencySamples int64         `json:"latency_samples"`
	P50            time.Duration `json:"p50_ns"`
	P90            time.Duration `json:"p90_ns"`
	P99            time.Duration `json:"p99_ns"`
	TTFBP99        time.Duration `json:"ttfb_p99_ns"`
}

// sample is the raw material of Stats: counts and merged histograms.
type sample struct {
	counts
	total, ttfb dist
	from, to    time.Time
	histFrom    time.Time
}

// release returns the sample's histogram memory to the registry's pool.
func (s *sample) release() {
	s.total.release()
	s.ttfb.release()
}

// stats derives the summary numbers of s.
func (s *sample) stats(cells []string) Stats {
	st := Stats{
		Cells: cells, From: s.from, To: s.to, LatencyFrom: s.histFrom,
		Requests: s.Requests, AvailabilityBad: s.AvailBad, LatencyBad: s.LatencyBad, TTFBBad: s.TTFBBad,
		ErrorRatio:      ratio(s.AvailBad, s.Requests),
		LatencyBadRatio: ratio(s.LatencyBad, s.Requests),
		TTFBBadRatio:    ratio(s.TTFBBad, s.Requests),
		LatencySamples:  s.total.n,
		TTFBP99:         time.Duration(s.ttfb.quantile(0.99)) * time.Microsecond,
	}
	var q [3]int64
	s.total.quantiles([]float64{0.5, 0.9, 0.99}, q[:])
	st.P50, st.P90, st.P99 = time.Duration(q[0])*time.Microsecond, time.Duration(q[1])*time.Microsecond, time.Duration(q[2])*time.Microsecond
	return st
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// histKinds selects which histograms gather merges.
type histKinds uint8

const (
	histNone  histKinds = 0
	histTotal histKinds = 1 << iota
	histTTFB
	// histDoneOnly leaves out the newest, still growing slice: the judge
	// then reads only cached merges (no atomic scans), at the price of
	// latency data up to one HistogramSlice old.
	histDoneOnly
	histBoth = histTotal | histTTFB
)

// gather merges cells' data from `from` to `to`, and the histogram slices
// overlapping the range (within the span the ring holds) that kinds asks
// for. Unknown cells contribute nothing (and are not created).
func (r *Registry) gather(cells []string, from, to time.Time, kinds histKinds) *sample {
	cfg := r.cfg.Load()
	s := &sample{from: from, to: to}
	s.total.pool, s.ttfb.pool = r.chunks, r.chunks
	iv, sl := int64(cfg.Interval), int64(cfg.HistogramSlice)
	hi := to.UnixNano() / iv
	lo := from.UnixNano() / iv
	hhi := to.UnixNano() / sl
	hlo := max(from.UnixNano()/sl, hhi-(r.histSlots-2)+1)
	s.histFrom = time.Unix(0, hlo*sl)
	if s.histFrom.Before(from) {
		s.histFrom = from
	}
	for _, name := range cells {
		if c := r.lookup(name); c != nil {
			s.counts.add(c.counts.sum(lo, hi))
			if kinds != histNone {
				total, ttfb := &s.total, &s.ttfb
				if kinds&histTotal == 0 {
					total = nil
				}
				if kinds&histTTFB == 0 {
					ttfb = nil
				}
				c.hists.merge(hlo, hhi, total, ttfb, kinds&histDoneOnly == 0)
			}
		}
		r.remote.addTo(name, lo, hi, hlo, hhi, s, kinds)
	}
	return s
}

// window returns the epoch-aligned start of a window of length w ending at
// now (w rounded to whole intervals, the current partial one included).
func (r *Registry) windowStart(now time.Time, w time.Duration) time.Time {
	cfg := r.cfg.Load()
	n := cfg.slots(w)
	iv := int64(cfg.Interval)
	return time.Unix(0, (now.UnixNano()/iv-n+1)*iv)
}

// Snapshot returns the merged stats of cells over the last window (whole
// intervals, the current partial one included).
func (r *Registry) Snapshot(cells []string, window time.Duration) Stats {
	now := r.now()
	s := r.gather(cells, r.windowStart(now, window), now, histBoth)
	defer s.release()
	return s.stats(cells)
}

// LatencyHistograms returns the merged total-latency and TTFB histograms
// of cells over the last window (at most HistogramSpan), as HdrHistograms
// in microseconds (1 µs–60 s, 3 significant figures) that the caller owns.
func (r *Registry) LatencyHistograms(cells []string, window time.Duration) (total, ttfb *hdrhistogram.Histogram) {
	now := r.now()
	s := r.gather(cells, r.windowStart(now, window), now, histBoth)
	defer s.release()
	return s.total.Histogram(), s.ttfb.Histogram()
}
