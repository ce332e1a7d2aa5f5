package bench

import (
	"math"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Modes reported in Result.Mode.
const (
	ModeOpen   = "open"
	ModeClosed = "closed"
)

// Summary is the shape of one latency distribution. Durations marshal to
// JSON as integer nanoseconds (the field names say so).
type Summary struct {
	Count int64         `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p99_9_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Bucket is one row of the compact distribution table: the responses whose
// latency fell in (previous UpTo, UpTo].
type Bucket struct {
	UpTo       time.Duration `json:"up_to_ns"`
	Count      int64         `json:"count"`
	Cumulative float64       `json:"cumulative_percent"`
}

// CellResult is one cell's share of the responses, keyed by the
// X-Cellgate-Cell response header ("" when the header was absent).
type CellResult struct {
	Cell     string        `json:"cell"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	Share    float64       `json:"share_percent"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
}

// Result is what one run measured (after the warm-up).
type Result struct {
	Target      string        `json:"target"`
	Mode        string        `json:"mode"`
	Rate        float64       `json:"target_rate,omitempty"` // open loop only
	Connections int           `json:"connections"`
	Keys        int           `json:"keys,omitempty"`
	KeyDist     string        `json:"key_dist,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"` // measured time, excluding warm-up
	Interrupted bool          `json:"interrupted,omitempty"`

	// Requests counts measured attempts: responses plus transport errors.
	Requests int64 `json:"requests"`
	// Errors counts transport errors, 5xx responses and responses that
	// carry X-Cellgate-Error.
	Errors int64   `json:"errors"`
	RPS    float64 `json:"rps"` // Requests per second of Elapsed
	// StaleRetries counts idempotent requests resent once because the
	// keep-alive connection they went out on had been closed by the server
	// while idle (no response byte came back), as real clients do.
	StaleRetries int64 `json:"stale_connection_retries,omitempty"`

	// Latency is measured from each request's intended send time (open
	// loop) or its actual send time (closed loop, where they are the same).
	Latency Summary `json:"latency"`
	// Uncorrected is measured from the actual send time; open loop only.
	// Comparing it with Latency shows what coordinated omission would hide.
	Uncorrected  *Summary         `json:"uncorrected,omitempty"`
	Distribution []Bucket         `json:"distribution"`
	Cells        []CellResult     `json:"cells,omitempty"`
	ErrorsBy     map[string]int64 `json:"errors_by_cause,omitempty"`
	Status       map[int]int64    `json:"status,omitempty"`

	// Histogram holds the corrected latencies (ns); UncorrectedHistogram
	// the uncorrected ones. For merging and plotting, not serialised.
	Histogram            *hdrhistogram.Histogram `json:"-"`
	UncorrectedHistogram *hdrhistogram.Histogram `json:"-"`
}

// summarize reads the standard percentiles off h.
func summarize(h *hdrhistogram.Histogram) Summary {
	if h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.TotalCount(),
		Min:   time.Duration(h.Min()),
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(h.ValueAtPercentile(50)),
		P90:   time.Duration(h.ValueAtPercentile(90)),
		P99:   time.Duration(h.ValueAtPercentile(99)),
		P999:  time.Duration(h.ValueAtPercentile(99.9)),
		Max:   time.Duration(h.Max()),
	}
}

// distributionRows is the number of rows of the compact table.
const distributionRows = 10

// distribution buckets h into at most distributionRows log-spaced ranges
// between its min and max: compact enough for a terminal, while still
// showing a second mode (a stall, a slow cell) that percentiles blur.
func distribution(h *hdrhistogram.Histogram) []Bucket {
	total := h.TotalCount()
	if total == 0 {
		return nil
	}
	lo, hi := float64(max(h.Min(), 1)), float64(max(h.Max(), 1))
	rows := distributionRows
	if hi <= lo*1.01 {
		rows = 1
	}
	out := make([]Bucket, rows)
	for i := range out {
		edge := lo * math.Pow(hi/lo, float64(i+1)/float64(rows))
		out[i].UpTo = time.Duration(niceCeil(edge))
	}
	out[rows-1].UpTo = time.Duration(h.Max())
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		i := sort.Search(rows, func(i int) bool { return int64(out[i].UpTo) >= bar.From })
		if i == rows {
			i = rows - 1
		}
		out[i].Count += bar.Count
	}
	var cum int64
	for i := range out {
		cum += out[i].Count
		out[i].Cumulative = 100 * float64(cum) / float64(total)
	}
	return out
}

// niceCeil rounds v up to two significant digits, so table edges read
// 1.2ms rather than 1.1837ms.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Ceil(v/p) * p
}

// collect merges the shards into res after the run has stopped.
func (res *Result) collect(shards []*shard) {
	unc := newHistogram()
	cells := map[string]*cellAgg{}
	res.ErrorsBy = map[string]int64{}
	res.Status = map[int]int64{}
	for _, s := range shards {
		s.mu.Lock()
		unc.Merge(s.uncorrected)
		for code, n := range s.status {
			if n > 0 {
				res.Status[code] += n
			}
		}
		for code, n := range s.errStatus {
			if n > 0 {
				res.ErrorsBy[statusCause(code)] += n
			}
		}
		for c, n := range s.causes {
			res.ErrorsBy[c] += n
		}
		for v, n := range s.cgErrs {
			res.ErrorsBy[causeCellgatePrefix+v] += *n
		}
		for name, c := range s.cells {
			agg := cells[name]
			if agg == nil {
				agg = &cellAgg{hist: newHistogram()}
				cells[name] = agg
			}
			agg.requests += c.requests
			agg.errors += c.errors
			agg.hist.Merge(c.hist)
		}
		s.mu.Unlock()
	}
	res.UncorrectedHistogram = unc
	res.Cells = cellResults(cells)
}

// cellResults sorts the per-cell aggregates by name. A lone anonymous cell
// (a target that sends no X-Cellgate-Cell) is no breakdown and is dropped.
func cellResults(cells map[string]*cellAgg) []CellResult {
	if _, anon := cells[""]; anon && len(cells) == 1 {
		return nil
	}
	var total int64
	for _, c := range cells {
		total += c.requests
	}
	out := make([]CellResult, 0, len(cells))
	for name, c := range cells {
		out = append(out, CellResult{
			Cell:     name,
			Requests: c.requests,
			Errors:   c.errors,
			Share:    100 * float64(c.requests) / float64(max(total, 1)),
			P50:      time.Duration(c.hist.ValueAtPercentile(50)),
			P99:      time.Duration(c.hist.ValueAtPercentile(99)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cell < out[j].Cell })
	return out
}

// finish derives the summary fields once Histogram and the counters are in.
func (res *Result) finish(open bool) {
	res.Latency = summarize(res.Histogram)
	if open {
		u := summarize(res.UncorrectedHistogram)
		res.Uncorrected = &u
	}
	res.Distribution = distribution(res.Histogram)
	if res.Elapsed > 0 {
		res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	}
}
