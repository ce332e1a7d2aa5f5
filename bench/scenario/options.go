package scenario

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Faults accepted by Options.Fault.
const (
	FaultNone    = ""
	FaultErrors  = "errors"  // the canary answers 500 to FaultRatio of its requests
	FaultLatency = "latency" // the canary adds FaultDelay to every response
)

// Options shape one rollout scenario. Zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// Fault is FaultNone (a healthy canary, expected to be promoted),
	// FaultErrors or FaultLatency (expected to be rolled back).
	Fault string
	// FaultStep is the 1-based step at which the fault starts, once the
	// rollout has entered it. Zero: 3 (the 25 % step).
	FaultStep int
	// FaultRatio is the share of canary requests answered 500 by FaultErrors.
	FaultRatio float64
	// FaultDelay is the latency FaultLatency adds to every canary response;
	// it must exceed LatencyThreshold to be a fault.
	FaultDelay time.Duration
	// LatencyThreshold is the node's slo.latency_threshold: a response
	// slower than it counts against the latency SLO. Tests of the error
	// fault raise it, so that a machine loaded enough to slow every request
	// past 300 ms (the race detector on a shared CI box) does not burn the
	// latency SLO for reasons the test is not about.
	LatencyThreshold time.Duration

	// Rate is the open-loop load in requests per second.
	Rate float64
	// Keys is the number of distinct sticky keys (X-User-ID).
	Keys int
	// Connections bounds the requests in flight.
	Connections int

	// Tick is the node's rollout.tick: how often the judge is asked.
	Tick time.Duration
	// Bake is how long each step must be judged healthy.
	Bake time.Duration
	// MinRequests is the plan's and the SLO's minimum sample: neither
	// canary nor baseline is judged on fewer requests in a step.
	MinRequests int

	// Warmup is the load before the rollout starts: the baseline's SLO data
	// and, for the audit, each key's pre-rollout cell.
	Warmup time.Duration
	// Tail is the load after the rollout ended: after a revert, the time in
	// which keys are checked to be back on their pre-rollout cells.
	Tail time.Duration
	// Timeout bounds the rollout itself (Warmup and Tail not included).
	Timeout time.Duration

	// Logger receives the node's log. Nil: discarded.
	Logger *slog.Logger
	// Progress receives one line per rollout step or decision as it
	// happens. Nil: nothing.
	Progress io.Writer
}

// DefaultOptions returns the settings of `cellgate bench scenario rollout`,
// each with why.
func DefaultOptions() Options {
	return Options{
		FaultStep:        3,                      // 25 %: the fault hits enough users to be seen quickly
		FaultRatio:       0.3,                    // far above any SLO, so the judge's fail-ratio rule fires within a tick or two
		FaultDelay:       400 * time.Millisecond, // above the 300 ms latency threshold, below the 2 s request timeout
		LatencyThreshold: 300 * time.Millisecond, // the production default
		Rate:             1000,                   // 10 req/s on the canary at 1 %, enough samples per step in seconds
		Keys:             2000,                   // most keys are seen in the 2 s warm-up, so the audit knows their cells
		Connections:      200,                    // 400 ms canary responses at 25 % of 1000 req/s keep ~100 in flight: headroom to hold the schedule
		Tick:             250 * time.Millisecond, // seconds-scale, so the whole scenario takes about 15 s
		Bake:             time.Second,            // four ticks of healthy verdicts per step
		MinRequests:      20,                     // the canary's 1 % step collects this in about 2 s at 1000 req/s
		Warmup:           2 * time.Second,
		Tail:             2 * time.Second,
		Timeout:          2 * time.Minute, // a stuck rollout ends the scenario instead of hanging it
	}
}

// withDefaults fills zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.FaultStep <= 0 {
		o.FaultStep = d.FaultStep
	}
	if o.FaultRatio <= 0 {
		o.FaultRatio = d.FaultRatio
	}
	if o.FaultDelay <= 0 {
		o.FaultDelay = d.FaultDelay
	}
	if o.LatencyThreshold <= 0 {
		o.LatencyThreshold = d.LatencyThreshold
	}
	if o.Rate <= 0 {
		o.Rate = d.Rate
	}
	if o.Keys <= 0 {
		o.Keys = d.Keys
	}
	if o.Connections <= 0 {
		o.Connections = d.Connections
	}
	if o.Tick <= 0 {
		o.Tick = d.Tick
	}
	if o.Bake <= 0 {
		o.Bake = d.Bake
	}
	if o.MinRequests <= 0 {
		o.MinRequests = d.MinRequests
	}
	if o.Warmup <= 0 {
		o.Warmup = d.Warmup
	}
	if o.Tail <= 0 {
		o.Tail = d.Tail
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// validate reports what no default can fix.
func (o Options) validate() error {
	switch o.Fault {
	case FaultNone, FaultErrors, FaultLatency:
	default:
		return fmt.Errorf("fault %q: want %s or %s", o.Fault, FaultErrors, FaultLatency)
	}
	if o.FaultStep > len(steps) {
		return fmt.Errorf("fault step %d: the plan has %d steps", o.FaultStep, len(steps))
	}
	if o.FaultRatio > 1 {
		return fmt.Errorf("fault ratio %v: must be at most 1", o.FaultRatio)
	}
	if o.Fault == FaultLatency && o.FaultDelay <= o.LatencyThreshold {
		return fmt.Errorf("fault delay %v: must exceed the latency threshold %v to be a fault", o.FaultDelay, o.LatencyThreshold)
	}
	return nil
}
