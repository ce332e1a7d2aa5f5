package scenario

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/internal/canaryrig"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/rollout"
)

// The scenario's cells: two stable, one canary (internal/canaryrig, as in
// the demo), indexed in this order by the recorder and the audit.
var (
	cellNames = []string{canaryrig.StableA, canaryrig.StableB, canaryrig.Canary}
	baseline  = canaryrig.Baseline
)

const (
	canaryIndex = 2
	canaryName  = canaryrig.Canary
	keyPrefix   = "user-"
)

// steps is the canary plan's steps, in percent (canaryrig.Plan's).
var steps = []float64{1, 5, 25, 50, 100}

// Rollout runs the rollout scenario and reports it. An error means the
// scenario could not be set up (ports, journal, config); a rollout that
// ended unexpectedly is a report with OK false.
func Rollout(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("scenario rollout: %w", err)
	}
	s := &scenario{o: o, base: time.Now()}
	rig, err := canaryrig.Start(canaryrig.Options{Name: "scenario", Tables: s.tables(), Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("scenario rollout: %w", err)
	}
	defer rig.Close() // the report is made; a slow drain changes nothing in it
	s.node, s.canary = rig.Node, rig.Cells[canaryrig.Canary]
	return s.run(ctx)
}

// scenario is the state of one run.
type scenario struct {
	o      Options
	base   time.Time // scenario start; every recorded time is since base
	node   *cellgate.Node
	canary *democell.Server // the canary cell's endpoint, where faults go
	rec    *recorder

	// Set by run, read by report.
	id       string
	startAt  time.Duration // Controller.Start was called
	faultAt  time.Duration // fault injected; 0: not injected
	faultPct float64
	faultStp int
	endAt    time.Duration
	view     rollout.RolloutView
	tl       timeline
	problems []string
}

func (s *scenario) since() time.Duration { return time.Since(s.base) }

// tables is the node's config beyond the rig's: seconds-scale SLO windows so
// a whole rollout fits in seconds, and the scenario's tick and minimum
// sample.
func (s *scenario) tables() string {
	return fmt.Sprintf(`[routing]
sticky_key = ["header:X-User-ID"]
[slo]
latency_threshold = %q
fast_burn = { long = "30s", short = "2s", rate = 14.4 }
slow_burn = { long = "60s", short = "5s", rate = 6 }
min_requests = %d
[rollout]
tick = %q
degraded_ticks = 3
`, s.o.LatencyThreshold.String(), s.o.MinRequests, s.o.Tick.String())
}

// plan is the canary plan the scenario runs.
func (s *scenario) plan() rollout.Plan {
	return canaryrig.Plan("scenario-canary", s.o.Bake, s.o.MinRequests,
		rollout.Release{Version: "v2", Notes: "cellgate bench scenario rollout"})
}

// run drives load, the rollout and the fault, then builds the report.
func (s *scenario) run(ctx context.Context) (*Report, error) {
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	loadErr := make(chan error, 1)
	go s.load(loadCtx, loadErr)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	var wg sync.WaitGroup
	var tl []weightChange
	wg.Go(func() { tl = watchWeights(watchCtx, s.base, s.node.Proxy().Weights) })

	err := s.drive(ctx)
	if err == nil {
		// The tail: keys keep coming so the audit sees them after the end.
		canaryrig.Sleep(ctx, s.o.Tail)
	}
	s.endAt = s.since()
	stopLoad()
	lerr := <-loadErr
	stopWatch()
	wg.Wait()
	s.tl = tl
	if err != nil {
		return nil, err
	}
	if lerr != nil {
		return nil, fmt.Errorf("scenario rollout: load: %w", lerr)
	}
	if s.id != "" {
		v, verr := s.node.Controller().Rollout(s.id)
		if verr != nil {
			return nil, fmt.Errorf("scenario rollout: %w", verr)
		}
		s.view = v
	}
	return s.report(), nil
}

// drive runs the warm-up, starts the rollout, injects the fault and waits
// for the rollout to end. Interruption and a stuck rollout are recorded as
// problems, not errors: what was measured is still reported.
func (s *scenario) drive(ctx context.Context) error {
	if !canaryrig.Sleep(ctx, s.o.Warmup) {
		s.problems = append(s.problems, "interrupted during the warm-up")
		return nil
	}
	s.startAt = s.since()
	id, err := s.node.Controller().Start(s.plan(), "bench-scenario")
	if err != nil {
		return fmt.Errorf("scenario rollout: start: %w", err)
	}
	s.id = id
	poll := time.NewTicker(max(s.o.Tick/5, 10*time.Millisecond))
	defer poll.Stop()
	deadline := time.NewTimer(s.o.Timeout)
	defer deadline.Stop()
	lastStep := 0
	for {
		select {
		case <-ctx.Done():
			s.problems = append(s.problems, "interrupted before the rollout ended")
			return nil
		case <-deadline.C:
			s.problems = append(s.problems, fmt.Sprintf("the rollout did not end within %v", s.o.Timeout))
			return nil
		case <-poll.C:
		}
		v, err := s.node.Controller().Rollout(id)
		if err != nil {
			return fmt.Errorf("scenario rollout: %w", err)
		}
		if v.Step != lastStep {
			lastStep = v.Step
			s.progress("step %d (%g%%)", v.Step, v.StepPercent)
		}
		if v.Status.Terminal() {
			s.progress("%s: %s", v.Status, v.Reason)
			return nil
		}
		s.maybeFault(v)
	}
}

// maybeFault breaks the canary once the rollout has entered FaultStep.
func (s *scenario) maybeFault(v rollout.RolloutView) {
	if s.o.Fault == FaultNone || s.faultAt > 0 || v.Step < s.o.FaultStep {
		return
	}
	// The onset is taken before the canary breaks, so every request that
	// can meet the fault is counted from it (see phases and faultResult).
	s.faultAt = s.since()
	switch s.o.Fault {
	case FaultErrors:
		s.canary.SetErrorRatio(s.o.FaultRatio)
	case FaultLatency:
		s.canary.SetDelay(s.o.FaultDelay)
	}
	s.faultStp, s.faultPct = v.Step, v.StepPercent
	s.progress("fault: %s on %s", s.faultText(), canaryName)
}

func (s *scenario) faultText() string {
	switch s.o.Fault {
	case FaultErrors:
		return fmt.Sprintf("%g%% of requests answer 500", 100*s.o.FaultRatio)
	case FaultLatency:
		return fmt.Sprintf("+%v per response", s.o.FaultDelay)
	}
	return "none"
}

func (s *scenario) progress(format string, args ...any) {
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, "%7.2fs  %s\n", s.since().Seconds(), fmt.Sprintf(format, args...))
	}
}

// load drives open-loop keyed traffic through the node until ctx is done.
func (s *scenario) load(ctx context.Context, done chan<- error) {
	cfg := bench.DefaultConfig()
	cfg.URL = "http://" + s.node.Addr() + "/"
	cfg.Rate = s.o.Rate
	cfg.Connections = s.o.Connections
	cfg.Warmup, cfg.Duration = 0, 0 // every response counts; run until cancelled
	cfg.Keys = s.o.Keys
	cfg.KeyPrefix = keyPrefix
	cfg.Timeout = 2 * time.Second // well above the latency fault, so it shows as latency, not errors
	s.rec = newRecorder(s.base, cfg.Connections, keyPrefix, cellNames)
	_, err := bench.Run(ctx, cfg, bench.Hooks{OnResponse: s.rec.observe})
	done <- err
}
