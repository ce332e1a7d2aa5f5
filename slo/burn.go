package slo

import (
	"math"
	"time"
)

// SLO names as used in burn-rate results and the slo metric label.
const (
	SLOAvailability = "availability"
	SLOLatency      = "latency"
	SLOTTFB         = "ttfb"
)

// Window names of the burn-rate results and of the window metric label:
// the four windows of the two multi-window rules.
const (
	WindowFastLong  = "fast_long"
	WindowFastShort = "fast_short"
	WindowSlowLong  = "slow_long"
	WindowSlowShort = "slow_short"
)

// BurnRate is one SLO's burn rate over one window.
type BurnRate struct {
	SLO      string        `json:"slo"`
	Window   string        `json:"window"`
	Length   time.Duration `json:"length_ns"`
	Requests uint64        `json:"requests"`
	Bad      uint64        `json:"bad"`
	// Rate is the bad ratio divided by the error budget (1 − objective):
	// 1 spends the budget exactly over the SLO period.
	Rate float64 `json:"rate"`
	// Enough is false when the window had fewer than MinRequests requests;
	// its rate then cannot fire a rule.
	Enough bool `json:"enough_data"`
}

// Burn returns the burn rate of bad out of total events at objective.
func Burn(bad, total uint64, objective float64) float64 {
	if total == 0 {
		return 0
	}
	return float64(bad) / float64(total) / (1 - objective)
}

// RuleFires reports whether a multi-window rule fires on its two windows.
func RuleFires(rule BurnRule, long, short BurnRate) bool {
	return long.Enough && short.Enough && long.Rate >= rule.Rate && short.Rate >= rule.Rate
}

// TimeToFire returns how long a constant bad ratio (starting from a clean
// history) takes to fire rule at objective, as in the SRE workbook's
// tables: the long window must fill to rate × budget, the short one too.
// It returns +Inf duration (math.MaxInt64) when the rule never fires.
func TimeToFire(rule BurnRule, objective, badRatio float64) time.Duration {
	need := rule.Rate * (1 - objective) / badRatio // fraction of a window
	if badRatio <= 0 || need > 1+1e-9 {
		return time.Duration(math.MaxInt64)
	}
	need = min(need, 1)
	return time.Duration(need * float64(max(rule.Long, rule.Short)))
}

// burnSet is the burn rates of every SLO over every window for one group
// of cells at one instant.
type burnSet struct {
	rates []BurnRate
}

// get returns the rate for slo and window.
func (b *burnSet) get(slo, window string) BurnRate {
	for _, r := range b.rates {
		if r.SLO == slo && r.Window == window {
			return r
		}
	}
	return BurnRate{}
}

// burns computes the burn rates of cells at now over the four rule windows.
func (r *Registry) burns(cells []string, now time.Time) burnSet {
	cfg := r.cfg.Load()
	var b burnSet
	for _, w := range []struct {
		name string
		d    time.Duration
	}{
		{WindowFastLong, cfg.FastBurn.Long}, {WindowFastShort, cfg.FastBurn.Short},
		{WindowSlowLong, cfg.SlowBurn.Long}, {WindowSlowShort, cfg.SlowBurn.Short},
	} {
		s := r.gather(cells, r.windowStart(now, w.d), now, histNone)
		enough := s.Requests >= uint64(cfg.MinRequests)
		add := func(slo string, bad uint64, obj float64) {
			b.rates = append(b.rates, BurnRate{SLO: slo, Window: w.name, Length: w.d,
				Requests: s.Requests, Bad: bad, Rate: Burn(bad, s.Requests, obj), Enough: enough})
		}
		add(SLOAvailability, s.AvailBad, cfg.Availability)
		add(SLOLatency, s.LatencyBad, cfg.LatencyObjective)
		if cfg.TTFBThreshold > 0 {
			add(SLOTTFB, s.TTFBBad, cfg.TTFBObjective)
		}
	}
	return b
}

// firing returns the SLOs for which rule fires (fast or slow).
func (b *burnSet) firing(rule BurnRule, long, short string) []BurnRate {
	var out []BurnRate
	for _, slo := range []string{SLOAvailability, SLOLatency, SLOTTFB} {
		l, s := b.get(slo, long), b.get(slo, short)
		if l.SLO != "" && RuleFires(rule, l, s) {
			out = append(out, l, s)
		}
	}
	return out
}

// BurnRates returns the burn rates of cells (merged) over the four rule
// windows at the registry's current time.
func (r *Registry) BurnRates(cells []string) []BurnRate {
	return r.burns(cells, r.now()).rates
}
