package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// CompareConfig describes a compare run: every target gets the same load
// settings, for Duration (after its own Warmup) per round.
type CompareConfig struct {
	// Config holds the per-run settings; its URL is ignored.
	Config
	// Targets are the URLs to compare; ratios are to the first.
	Targets []string
	// Rounds is how many times each target is run. Targets take turns
	// within a round and the order rotates between rounds, so slow drift of
	// the machine (thermal, other load) and order effects hit all targets
	// alike. Zero means 3.
	Rounds int
}

// CompareHooks watches a compare run. Every field is optional.
type CompareHooks struct {
	// Run is passed to every run.
	Run Hooks
	// OnRun is called before each run starts.
	OnRun func(round, target int, url string)
}

// Ratios are one target's metrics divided by the first target's.
type Ratios struct {
	RPS  float64 `json:"rps"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// CompareTarget is one target's outcome over all rounds.
type CompareTarget struct {
	Target   string  `json:"target"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"` // all requests over all measured time
	// Latency is read off the histograms of all rounds merged.
	Latency Summary `json:"latency"`
	// Ratio is the median over complete rounds of this target's metric
	// divided by the first target's in the same round; nil for the first
	// target and when no round completed.
	Ratio     *Ratios                 `json:"ratio_to_first,omitempty"`
	Rounds    []*Result               `json:"rounds"`
	Histogram *hdrhistogram.Histogram `json:"-"`
}

// CompareResult is what RunCompare measured.
type CompareResult struct {
	Rounds         int             `json:"rounds"`
	CompleteRounds int             `json:"complete_rounds"`
	Interrupted    bool            `json:"interrupted,omitempty"`
	Targets        []CompareTarget `json:"targets"`
}

// ValidateCompare reports every problem of cc at once.
func (cc *CompareConfig) Validate() error {
	var errs []error
	if len(cc.Targets) < 2 {
		errs = append(errs, fmt.Errorf("compare: need at least 2 target URLs, got %d", len(cc.Targets)))
	}
	if cc.Rounds < 0 {
		errs = append(errs, fmt.Errorf("rounds %d: must not be negative", cc.Rounds))
	}
	if cc.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: compare needs a positive duration per round", cc.Duration))
	}
	for _, u := range cc.Targets {
		c := cc.Config
		c.URL = u
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cc.Targets) == 0 {
		c := cc.Config
		c.URL = "http://placeholder/"
		errs = append(errs, c.Validate())
	}
	return errors.Join(errs...)
}

// RunCompare runs the targets interleaved in rounds and reports each
// target's percentiles and its ratios to the first target. A cancelled
// context ends the comparison early with what was measured.
func RunCompare(ctx context.Context, cc CompareConfig, hooks CompareHooks) (*CompareResult, error) {
	if err := cc.Validate(); err != nil {
		return nil, fmt.Errorf("bench: invalid compare config: %w", err)
	}
	rounds := cc.Rounds
	if rounds == 0 {
		rounds = 3
	}
	out := &CompareResult{Rounds: rounds, Targets: make([]CompareTarget, len(cc.Targets))}
	perRound := make([][]*Result, rounds) // [round][target]
	for round := 0; round < rounds && ctx.Err() == nil; round++ {
		perRound[round] = make([]*Result, len(cc.Targets))
		for k := range cc.Targets {
			ti := (k + round) % len(cc.Targets) // rotate the order per round
			if ctx.Err() != nil {
				break
			}
			if hooks.OnRun != nil {
				hooks.OnRun(round, ti, cc.Targets[ti])
			}
			cfg := cc.Config
			cfg.URL = cc.Targets[ti]
			res, err := Run(ctx, cfg, hooks.Run)
			if err != nil {
				return nil, fmt.Errorf("round %d, target %s: %w", round+1, cfg.URL, err)
			}
			perRound[round][ti] = res
		}
	}
	out.Interrupted = ctx.Err() != nil
	out.summarize(cc.Targets, perRound)
	return out, nil
}

// summarize merges rounds per target and computes the median ratios over
// the rounds in which every target ran to completion.
func (out *CompareResult) summarize(targets []string, perRound [][]*Result) {
	var complete [][]*Result
	for _, row := range perRound {
		if isComplete(row) {
			complete = append(complete, row)
		}
	}
	out.CompleteRounds = len(complete)
	for ti, url := range targets {
		t := CompareTarget{Target: url, Histogram: newHistogram()}
		var elapsed time.Duration
		for _, row := range perRound {
			if row == nil || row[ti] == nil {
				continue
			}
			res := row[ti]
			t.Rounds = append(t.Rounds, res)
			t.Requests += res.Requests
			t.Errors += res.Errors
			elapsed += res.Elapsed
			t.Histogram.Merge(res.Histogram)
		}
		if elapsed > 0 {
			t.RPS = float64(t.Requests) / elapsed.Seconds()
		}
		t.Latency = summarize(t.Histogram)
		if ti > 0 && len(complete) > 0 {
			t.Ratio = medianRatios(complete, ti)
		}
		out.Targets[ti] = t
	}
}

func isComplete(row []*Result) bool {
	if row == nil {
		return false
	}
	for _, r := range row {
		if r == nil || r.Interrupted {
			return false
		}
	}
	return true
}

// medianRatios is the per-metric median of target ti's ratio to target 0.
func medianRatios(rows [][]*Result, ti int) *Ratios {
	metric := func(get func(*Result) float64) float64 {
		vals := make([]float64, 0, len(rows))
		for _, row := range rows {
			vals = append(vals, ratio(get(row[ti]), get(row[0])))
		}
		return median(vals)
	}
	return &Ratios{
		RPS:  metric(func(r *Result) float64 { return r.RPS }),
		P50:  metric(func(r *Result) float64 { return float64(r.Latency.P50) }),
		P90:  metric(func(r *Result) float64 { return float64(r.Latency.P90) }),
		P99:  metric(func(r *Result) float64 { return float64(r.Latency.P99) }),
		P999: metric(func(r *Result) float64 { return float64(r.Latency.P999) }),
		Max:  metric(func(r *Result) float64 { return float64(r.Latency.Max) }),
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median of vals (which it sorts); the mean of the middle two when even.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	sort.Float64s(vals)
	m := len(vals) / 2
	if len(vals)%2 == 1 {
		return vals[m]
	}
	return (vals[m-1] + vals[m]) / 2
}

// WriteCompareText writes the comparison table and the ratios.
func WriteCompareText(w io.Writer, cr *CompareResult) error {
	fmt.Fprintf(w, "compare: %d rounds (%d complete)%s, targets interleaved, order rotated per round\n\n",
		cr.Rounds, cr.CompleteRounds, ifStr(cr.Interrupted, ", interrupted"))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  target\treq/s\terrors\tp50\tp90\tp99\tp99.9\tmax\n")
	for i, t := range cr.Targets {
		fmt.Fprintf(tw, "  %s %s\t%.0f\t%d\t%s\t%s\t%s\t%s\t%s\n", targetLetter(i), t.Target, t.RPS, t.Errors,
			fmtDur(t.Latency.P50), fmtDur(t.Latency.P90), fmtDur(t.Latency.P99), fmtDur(t.Latency.P999), fmtDur(t.Latency.Max))
	}
	if len(cr.Targets) > 1 && cr.Targets[1].Ratio != nil {
		fmt.Fprintf(tw, "\n  ratio to A (median of rounds)\treq/s\t\tp50\tp90\tp99\tp99.9\tmax\n")
		for i, t := range cr.Targets[1:] {
			r := t.Ratio
			if r == nil {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%.2f×\t\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\n", targetLetter(i+1), r.RPS, r.P50, r.P90, r.P99, r.P999, r.Max)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write compare report: %w", err)
	}
	return nil
}

// targetLetter names target i A, B, … in tables, plots and hlog tags.
func targetLetter(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return fmt.Sprintf("T%d", i+1)
}
