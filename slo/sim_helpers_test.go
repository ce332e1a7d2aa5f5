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
	// fault is the share of requests answered 500 by a broken release, on
	// top of (and independent of) the noisy baseline error ratio.
	fault float64
}

// simWorld drives registries (one per proxy node; node 0's is reg) with
// simulated traffic on a simulated clock.
type simWorld struct {
	rng   *rand.Rand
	now   time.Time
	reg   *Registry       // node 0's registry
	regs  []*Registry     // every node's; a request lands on one at random
	lat   []time.Duration // the shared latency distribution, sampled
	cells []*simCell
	sec   int // seconds simulated so far
	// noise is the per-second, per-cell log-sigma of the error ratio and
	// latency level: real services wobble, independently per cell.
	errNoise, latNoise float64

	// events is the current second's requests in time order (reused);
	// pending holds each cell's requests, in time order, as runs of it.
	events, pending []simEvent
	runs            [][2]int
	// before is called before each request is recorded, after with the
	// request recorded (either may be nil); stop ends the current second
	// early (the rollout has been decided).
	before, after func(e *simEvent)
	stop          bool
}

// simEvent is one simulated request.
type simEvent struct {
	at     int64 // Unix ns of its end
	cell   *simCell
	node   int
	status int
	d      time.Duration
}

// simEpoch is where simulated time starts (any fixed instant works).
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSimWorld(seed uint64, cfg Config) *simWorld { return newSimFleet(seed, cfg, 1) }

// newSimFleet is a world of nodes proxy nodes sharing the traffic.
func newSimFleet(seed uint64, cfg Config, nodes int) *simWorld {
	w := &simWorld{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), now: simEpoch, errNoise: 0.3, latNoise: 0.03}
	for range nodes {
		w.regs = append(w.regs, NewRegistry(cfg, func() time.Time { return w.now }))
	}
	w.reg = w.regs[0]
	w.lat = make([]time.Duration, 4096)
	for i := range w.lat {
		w.lat[i] = lognormal(w.rng, 40*time.Millisecond, 0.5)
	}
	return w
}

// mergeRuns merges the time-ordered runs of pending into events, in time
// order, ties by cell name (a k-way merge: sorting a second's events was a
// sixth of a simulation's time).
func (w *simWorld) mergeRuns() {
	w.events = w.events[:0]
	heads := make([]int, len(w.runs))
	for i, r := range w.runs {
		heads[i] = r[0]
	}
	for {
		best := -1
		for i, r := range w.runs {
			if heads[i] == r[1] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			a, b := &w.pending[heads[i]], &w.pending[heads[best]]
			if a.at < b.at || (a.at == b.at && a.cell.name < b.cell.name) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		w.events = append(w.events, w.pending[heads[best]])
		heads[best]++
	}
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

// second simulates one second of traffic on every cell, request by request
// in time order, then leaves the clock just before the next second (where
// a controller tick would look).
func (w *simWorld) second() {
	start := simEpoch.Add(time.Duration(w.sec) * time.Second)
	w.sec++
	w.runs = w.runs[:0]
	w.pending = w.pending[:0]
	startNs := start.UnixNano()
	for _, c := range w.cells {
		n := w.poisson(c.rps)
		p := c.errRatio * math.Exp(w.errNoise*w.rng.NormFloat64()-w.errNoise*w.errNoise/2)
		scale := c.latScale * math.Exp(w.latNoise*w.rng.NormFloat64())
		from := len(w.pending)
		for j := range n {
			e := simEvent{at: startNs + int64(j)*int64(time.Second)/int64(n), cell: c, status: 200,
				d: time.Duration(float64(w.lat[w.rng.IntN(len(w.lat))]) * scale)}
			if w.rng.Float64() < p {
				e.status = 503
			}
			if c.fault > 0 && w.rng.Float64() < c.fault {
				e.status = 500
			}
			if len(w.regs) > 1 {
				e.node = w.rng.IntN(len(w.regs))
			}
			w.pending = append(w.pending, e)
		}
		w.runs = append(w.runs, [2]int{from, len(w.pending)})
	}
	w.mergeRuns()
	for i := range w.events {
		e := &w.events[i]
		if w.before != nil {
			w.before(e)
		}
		if w.stop {
			return
		}
		w.now = time.Unix(0, e.at)
		w.regs[e.node].Cell(e.cell.name).RecordAt(w.now, e.status, false, e.d, e.d/2)
		if w.after != nil {
			w.after(e)
		}
	}
	w.now = start.Add(time.Second - time.Millisecond)
}
