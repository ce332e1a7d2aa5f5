package slo

import (
	"math"
	"math/rand/v2"
	"time"
)

// lognormal draws a duration with the given median and log-space sigma.
func lognormal(rng *rand.Rand, median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
}

// simConfig is the seconds-scale configuration the simulations (and the
// demo) use: fast burn 60 s / 5 s, slow burn 5 min / 30 s.
func simConfig() Config {
	cfg := DefaultConfig()
	cfg.FastBurn = BurnRule{Long: time.Minute, Short: 5 * time.Second, Rate: 14.4}
	cfg.SlowBurn = BurnRule{Long: 5 * time.Minute, Short: 30 * time.Second, Rate: 6}
	cfg.History = 15 * time.Minute
	return cfg
}

// simCell is one simulated cell's traffic model.
type simCell struct {
	name     string
	rps      float64 // mean requests per second
	errRatio float64 // mean bad ratio (5xx)
	latScale float64 // multiplies every latency (1 = baseline)
}

// simWorld drives a registry with simulated traffic on a simulated clock.
type simWorld struct {
	rng   *rand.Rand
	now   time.Time
	reg   *Registry
	lat   []time.Duration // the shared latency distribution, sampled
	cells []*simCell
	sec   int // seconds simulated so far
	// noise is the per-second, per-cell log-sigma of the error ratio and
	// latency level: real services wobble, independently per cell.
	errNoise, latNoise float64
}

// simEpoch is where simulated time starts (any fixed instant works).
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSimWorld(seed uint64, cfg Config) *simWorld {
	w := &simWorld{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), now: simEpoch, errNoise: 0.3, latNoise: 0.03}
	w.reg = NewRegistry(cfg, func() time.Time { return w.now })
	w.lat = make([]time.Duration, 4096)
	for i := range w.lat {
		w.lat[i] = lognormal(w.rng, 40*time.Millisecond, 0.5)
	}
	return w
}

func (w *simWorld) add(c *simCell) *simCell {
	w.cells = append(w.cells, c)
	return c
}

// poisson draws a Poisson count (normal approximation above 30).
func (w *simWorld) poisson(l float64) int {
	if l > 30 {
		return max(0, int(math.Round(l+math.Sqrt(l)*w.rng.NormFloat64())))
	}
	n, p, limit := 0, 1.0, math.Exp(-l)
	for {
		p *= w.rng.Float64()
		if p <= limit {
			return n
		}
		n++
	}
}

// second simulates one second of traffic on every cell, then leaves the
// clock just before the next second (where a controller tick would look).
func (w *simWorld) second() {
	start := simEpoch.Add(time.Duration(w.sec) * time.Second)
	w.sec++
	for _, c := range w.cells {
		cell := w.reg.Cell(c.name)
		n := w.poisson(c.rps)
		p := c.errRatio * math.Exp(w.errNoise*w.rng.NormFloat64()-w.errNoise*w.errNoise/2)
		scale := c.latScale * math.Exp(w.latNoise*w.rng.NormFloat64())
		startNs := start.UnixNano()
		for j := range n {
			at := time.Unix(0, startNs+int64(j)*int64(time.Second)/int64(n))
			d := time.Duration(float64(w.lat[w.rng.IntN(len(w.lat))]) * scale)
			status := 200
			if w.rng.Float64() < p {
				status = 503
			}
			cell.RecordAt(at, status, false, d, d/2)
		}
	}
	w.now = start.Add(time.Second - time.Millisecond)
}
