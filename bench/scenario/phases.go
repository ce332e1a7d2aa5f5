package scenario

import (
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Phase is one stretch of the scenario: the baseline before the rollout,
// each step, the fault until the revert, and what came after. Requests
// belong to the phase in which they were due to be sent, except that the
// fault phase also takes the requests still in flight at its onset: they
// may have met the broken canary, and counting them in the step before
// would blame the step for the fault.
type Phase struct {
	Name     string        `json:"name"`
	Step     int           `json:"step,omitempty"` // 1-based rollout step, 0 outside steps
	Percent  float64       `json:"percent"`        // the canary's step percentage during the phase
	Start    time.Duration `json:"start_ns"`       // since the scenario started
	End      time.Duration `json:"end_ns"`
	Requests int64         `json:"requests"`
	Failed   int64         `json:"failed"`
	// CanaryShare is the canary's share of the routed responses, in percent.
	CanaryShare float64       `json:"canary_share_percent"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
}

// mark starts a phase at a moment; the phase runs to the next mark.
type mark struct {
	at      time.Duration
	name    string
	step    int
	percent float64
	// takesInFlight: requests due before the mark but answered at or
	// after it belong to this phase.
	takesInFlight bool
}

// phases splits the observations at the marks (sorted here) and measures
// each phase up to end. A request's latency is hi − lo: from its intended
// send time to its response, as the generator measures it.
func phases(marks []mark, end time.Duration, all []obs, canary int8) []Phase {
	slices.SortStableFunc(marks, func(a, b mark) int { return int(a.at - b.at) })
	out := make([]Phase, len(marks))
	hists := make([]*hdrhistogram.Histogram, len(marks))
	routed := make([]int64, len(marks))
	onCanary := make([]int64, len(marks))
	for i, m := range marks {
		out[i] = Phase{Name: m.name, Step: m.step, Percent: m.percent, Start: m.at, End: end}
		if i+1 < len(marks) {
			out[i].End = marks[i+1].at
		}
		// 1 µs to 1 min at 3 significant digits, as the bench records.
		hists[i] = hdrhistogram.New(1_000, int64(time.Minute), 3)
	}
	for _, o := range all {
		// The last mark at or before o.lo; requests due before the first
		// mark count in the first phase.
		i, found := slices.BinarySearchFunc(marks, time.Duration(o.lo), func(m mark, t time.Duration) int { return int(m.at - t) })
		if !found {
			i--
		}
		for i+1 < len(marks) && marks[i+1].at == time.Duration(o.lo) {
			i++
		}
		i = max(i, 0)
		for j := i + 1; j < len(marks); j++ {
			if marks[j].takesInFlight && o.hi >= int64(marks[j].at) {
				i = j
				break
			}
		}
		out[i].Requests++
		if o.failed {
			out[i].Failed++
		}
		if o.cell != noCell {
			routed[i]++
			if o.cell == canary {
				onCanary[i]++
			}
		}
		_ = hists[i].RecordValue(min(max(o.hi-o.lo, 1_000), int64(time.Minute)))
	}
	for i := range out {
		if routed[i] > 0 {
			out[i].CanaryShare = 100 * float64(onCanary[i]) / float64(routed[i])
		}
		if hists[i].TotalCount() > 0 {
			out[i].P50 = time.Duration(hists[i].ValueAtPercentile(50))
			out[i].P99 = time.Duration(hists[i].ValueAtPercentile(99))
		}
	}
	return out
}
