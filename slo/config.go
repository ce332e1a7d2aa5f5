package slo

import (
	"errors"
	"fmt"
	"time"
)

// BurnRule is one multi-window burn-rate rule of the SRE workbook's
// "Alerting on SLOs" chapter: it fires when the burn rate is at least Rate
// over both the Long window and the Short window. The short window (1/12 of
// the long one in the workbook) makes the rule reset quickly once the burn
// stops.
type BurnRule struct {
	Long  time.Duration `json:"long"`
	Short time.Duration `json:"short"`
	Rate  float64       `json:"rate"`
}

// Config is the plain Go mirror of the [slo] TOML table; the configs package
// converts to it. Zero fields are filled from DefaultConfig by NewRegistry.
type Config struct {
	// Availability is the availability objective (0.999 = 99.9 %). 5xx
	// responses and proxy errors are bad events; 4xx are not.
	Availability float64
	// LatencyThreshold and LatencyObjective: LatencyObjective of requests
	// must finish under LatencyThreshold (total duration).
	LatencyThreshold time.Duration
	LatencyObjective float64
	// TTFBThreshold and TTFBObjective form an optional time-to-first-byte
	// SLO; TTFBThreshold 0 disables it.
	TTFBThreshold time.Duration
	TTFBObjective float64

	// FastBurn pages (the judge says failing); SlowBurn tickets (degraded).
	FastBurn, SlowBurn BurnRule

	// MinRequests is the number of requests a window needs before it can
	// speak: a burn window with fewer says "not enough data" and cannot fire,
	// and canary or baseline traffic below it since the step began makes the
	// verdict inconclusive. Never healthy without data.
	MinRequests int
	// FailRatio: a canary whose bad ratio over FailWindow is at least this
	// high, and significantly above baseline, is failing at once.
	FailRatio float64
	// FailWindow is the short look-back of the FailRatio rule. It is
	// separate from the burn windows so a canary that breaks outright is
	// caught within seconds even with production-length burn windows.
	FailWindow time.Duration
	// FailMinRequests is the FailRatio rule's own minimum: the rule reads
	// the shortest suffix of FailWindow holding this many canary requests.
	// Lower than MinRequests so a broken canary is reverted before the step
	// has its full sample; high enough that a few unlucky errors are not a
	// revert (5 of 100 at a 0.1 % error ratio has probability ~1e-8).
	FailMinRequests int

	// Interval is the width of one slot of the count ring (1 s). Windows
	// are whole numbers of slots.
	Interval time.Duration
	// History is how far back the count ring reaches beyond the burn
	// windows: the judge compares canary and baseline since the step began,
	// but at most this far back. Memory: 16 bytes per slot per cell.
	History time.Duration
	// HistogramSpan and HistogramSlice: latency histograms are kept for the
	// last HistogramSpan in slices of HistogramSlice; percentiles and the
	// latency rank test see at most HistogramSpan. Memory grows with
	// span/slice times the latency range actually seen (4 KiB per slice per
	// octave of latency).
	HistogramSpan  time.Duration
	HistogramSlice time.Duration

	// Alpha is the false-revert budget of a whole step for the whole
	// fleet, however often its nodes look (the sequential tests are valid
	// under continuous monitoring). Every node may revert on its own
	// evidence, so each node judges at Alpha / N, N being the fleet's size
	// (SetFleetSize), and splits that (Bonferroni): half to the decisive
	// error test's steady arm, half evenly to its matched arm, the
	// decisive latency test and the error-ratio and latency (and TTFB)
	// tests that say degraded (Registry.levels).
	Alpha float64
	// DecisiveMargin is the relative margin of the decisive tests: the
	// canary fails at once when its bad ratio (errors; requests slower than
	// baseline's p99) is decisively above (1+DecisiveMargin) × baseline's,
	// however few requests that takes. Smaller regressions are left to the
	// degraded tests and rollout.degraded_ticks.
	DecisiveMargin float64
	// DecisiveLookback is how far before the step's start the decisive
	// error test's steady arm learns the baseline's ratio: thousands of
	// requests pin it down, where the few hundred of a step's first second
	// cannot, so a small canary's first errors can be decisive at once. The
	// newer half is what the test's null hypothesis must explain, the older
	// half sharpens the numerator's guess (decisive.go). The arm is off while
	// the baseline's requests since the step look worse than before, so a
	// fleet-wide burst right after a step is not blamed on the canary.
	DecisiveLookback time.Duration
	// P99Margin is the practical-significance floor of the latency test: a
	// statistically significant shift only counts when the canary's p99 is
	// also at least this much (relative) above baseline's, so huge traffic
	// does not turn a 1 % slowdown into a revert.
	P99Margin float64
	// P99MinDelta is the absolute floor beside P99Margin: the canary's p99
	// must also exceed baseline's by at least this much. Without it a
	// sub-millisecond difference on a fast service (a canary's colder
	// connection pool at 1 % traffic, say) is a "significant" regression
	// that no user could notice. Zero: 5 % of LatencyThreshold (15 ms at
	// 300 ms) — 5 % of the budget the SLO grants a request.
	P99MinDelta time.Duration
	// ErrorMargin is the relative non-inferiority margin of the error-ratio
	// test: it asks whether the canary's ratio exceeds (1+ErrorMargin) ×
	// baseline's, so error bursts that a binomial model does not expect do
	// not add up to a false revert. LatencyMargin is the same for the rank
	// test, in units of P(canary slower) (0.01: 51 % instead of 50 %).
	ErrorMargin, LatencyMargin float64
	// ErrorTau and LatencyTau are the mixture scales of the SPRTs: the
	// effect size each test is most sensitive to. ErrorTau is relative to
	// the pooled error ratio (1 = "doubling"); LatencyTau is in units of
	// the rank statistic P(canary slower) − ½ (0.05 ≈ a 10 % shift of a
	// typical latency distribution).
	ErrorTau, LatencyTau float64
	// SignalMaxAge: an external signal older than this is treated as
	// missing (the verdict is then inconclusive, not healthy). 0 = no limit.
	SignalMaxAge time.Duration
}

// DefaultConfig returns production defaults, each with its reason.
func DefaultConfig() Config {
	return Config{
		Availability:     0.999,                  // three nines: 43 min of budget a month
		LatencyThreshold: 300 * time.Millisecond, // interactive request budget
		LatencyObjective: 0.99,                   // p99 under the threshold
		TTFBThreshold:    0,                      // off: many services stream, TTFB is opt-in
		TTFBObjective:    0.99,
		// The workbook's page and ticket rules: 2 % of a 30-day budget in
		// 1 h, 5 % in 6 h.
		FastBurn:         BurnRule{Long: time.Hour, Short: 5 * time.Minute, Rate: 14.4},
		SlowBurn:         BurnRule{Long: 6 * time.Hour, Short: 30 * time.Minute, Rate: 6},
		MinRequests:      200,             // ±0.7 % standard error on a 1 % ratio; matches plan min_requests
		FailRatio:        0.05,            // 50× a 99.9 % budget: broken, not noisy
		FailWindow:       5 * time.Second, // revert a broken canary within a few ticks
		FailMinRequests:  100,             // see the field: ~1e-8 false alarms per look at 0.1 % errors
		Interval:         time.Second,     // the rollout tick
		History:          30 * time.Minute,
		HistogramSpan:    time.Minute,     // percentiles over the last minute
		HistogramSlice:   5 * time.Second, // 13 slices per cell and histogram kind
		Alpha:            0.01,            // ≤ 1 % false reverts per step per fleet
		DecisiveMargin:   1,               // fail at once only on more than double baseline's bad ratio
		DecisiveLookback: time.Minute,     // 2 × 30 s: ~9000 baseline requests each at 300 req/s
		P99Margin:        0.05,            // ignore p99 shifts under 5 %
		ErrorMargin:      0.2,             // a 20 % relative excess is noise-level for bursty errors
		LatencyMargin:    0.01,            // a 10 % slowdown is ~0.05; 0.01 is wobble
		ErrorTau:         1,               // most sensitive around a doubling of errors
		LatencyTau:       0.05,            // most sensitive around a 10 % slowdown
		SignalMaxAge:     5 * time.Minute, // a quality score older than that says nothing about this step
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setF := func(v *float64, dv float64) {
		if *v == 0 {
			*v = dv
		}
	}
	setD := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	setF(&c.Availability, d.Availability)
	setD(&c.LatencyThreshold, d.LatencyThreshold)
	setF(&c.LatencyObjective, d.LatencyObjective)
	setF(&c.TTFBObjective, d.TTFBObjective)
	if c.FastBurn == (BurnRule{}) {
		c.FastBurn = d.FastBurn
	}
	if c.SlowBurn == (BurnRule{}) {
		c.SlowBurn = d.SlowBurn
	}
	if c.MinRequests == 0 {
		c.MinRequests = d.MinRequests
	}
	setF(&c.FailRatio, d.FailRatio)
	setD(&c.FailWindow, d.FailWindow)
	if c.FailMinRequests == 0 {
		c.FailMinRequests = d.FailMinRequests
	}
	setD(&c.Interval, d.Interval)
	setD(&c.History, d.History)
	setD(&c.HistogramSpan, d.HistogramSpan)
	setD(&c.HistogramSlice, d.HistogramSlice)
	setF(&c.Alpha, d.Alpha)
	setF(&c.DecisiveMargin, d.DecisiveMargin)
	setD(&c.DecisiveLookback, d.DecisiveLookback)
	setF(&c.P99Margin, d.P99Margin)
	setF(&c.ErrorTau, d.ErrorTau)
	setF(&c.ErrorMargin, d.ErrorMargin)
	setF(&c.LatencyMargin, d.LatencyMargin)
	setF(&c.LatencyTau, d.LatencyTau)
	return c
}

// Validate reports every problem of c (after defaults are applied), joined.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	ratio := func(name string, v float64) {
		if v <= 0 || v >= 1 {
			errs = append(errs, fmt.Errorf("%s must be in (0, 1), got %v", name, v))
		}
	}
	ratio("availability", c.Availability)
	ratio("latency_objective", c.LatencyObjective)
	ratio("ttfb_objective", c.TTFBObjective)
	ratio("fail_ratio", c.FailRatio)
	ratio("alpha", c.Alpha)
	for _, r := range []struct {
		name string
		BurnRule
	}{{"fast_burn", c.FastBurn}, {"slow_burn", c.SlowBurn}} {
		if r.Short <= 0 || r.Long < r.Short || r.Rate <= 0 {
			errs = append(errs, fmt.Errorf("%s needs 0 < short ≤ long and rate > 0, got %+v", r.name, r.BurnRule))
		}
		if r.Short%c.Interval != 0 || r.Long%c.Interval != 0 {
			errs = append(errs, fmt.Errorf("%s windows must be multiples of the interval %v", r.name, c.Interval))
		}
	}
	if c.HistogramSlice <= 0 || c.HistogramSpan < c.HistogramSlice {
		errs = append(errs, errors.New("histogram span must be at least one slice"))
	}
	if c.Interval <= 0 || c.FailWindow < c.Interval {
		errs = append(errs, errors.New("interval must be positive and fail window at least one interval"))
	}
	if c.MinRequests < 0 || c.FailMinRequests < 0 || c.P99Margin < 0 || c.DecisiveMargin < 0 {
		errs = append(errs, errors.New("min_requests, fail_min_requests, p99_margin and decisive_margin must not be negative"))
	}
	return errors.Join(errs...)
}

// slots returns how many whole intervals d spans (at least 1).
func (c Config) slots(d time.Duration) int64 {
	n := int64(d / c.Interval)
	if n < 1 {
		n = 1
	}
	return n
}

// ringSlots is the count ring length: the longest window plus two spare
// slots, so a reader never sums the slot a recorder is recycling.
func (c Config) ringSlots() int64 {
	longest := max(c.FastBurn.Long, c.SlowBurn.Long, c.History, c.FailWindow)
	return c.slots(longest) + 2
}
