// Package demo is `cellgate demo`: one node, three in-process demo cells
// (two stable, one canary), keyed open-loop load and a canary rollout that a
// person can watch advance — and, with a fault, watch revert by itself.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/internal/canaryrig"
	"github.com/cellgate/cellgate/rollout"
)

// Options shape one demo run.
type Options struct {
	// Duration bounds the run; the rollout's bake times are scaled to fit
	// it (about a twelfth of it per step). Zero: one minute.
	Duration time.Duration
	// Fault makes the canary answer 500 for FaultRatio of its requests
	// once the rollout reaches FaultAtStep, so the judge reverts it.
	Fault       bool
	FaultRatio  float64 // zero: 0.3
	FaultAtStep int     // 1-based; zero: 3 (the 25 % step)
	// Keep keeps the node serving after the rollout ends, until ctx is done.
	Keep bool
	// Rate is the load in requests per second. Zero: 400.
	Rate float64
	// AdminAddr is where the admin API and status page listen. Empty:
	// 127.0.0.1:9901 if free, else any free loopback port.
	AdminAddr string
	// View receives the live view: redrawn in place when it is a
	// terminal, one line per second otherwise. Nil: no view.
	View io.Writer
	// Terminal says View is a terminal (ANSI redraw).
	Terminal bool
	// Logger receives the node's log. Nil: discarded.
	Logger *slog.Logger
}

// Summary is what a demo run did.
type Summary struct {
	RolloutID   string
	Status      rollout.Status
	Steps       []float64 // steps the rollout entered, in percent
	Decisions   []rollout.Event
	Requests    int64
	Failed      int64 // requests the client saw fail (5xx or transport)
	FaultFailed int64 // of those, failed after the fault was injected
	FaultAt     time.Time
	RevertedAt  time.Time // when the canary's weight went back to 0
	CellCounts  map[string]int64
	StatusURL   string
}

// Run runs the demo and returns its summary.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o = o.withDefaults()
	d := &run{o: o, counts: map[string]*atomic.Int64{}}
	return d.run(ctx)
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.FaultRatio <= 0 {
		o.FaultRatio = 0.3
	}
	if o.FaultAtStep <= 0 {
		o.FaultAtStep = 3
	}
	if o.Rate <= 0 {
		o.Rate = 400
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// run is the state of one demo run.
type run struct {
	o      Options
	rig    *canaryrig.Rig
	node   *cellgate.Node
	counts map[string]*atomic.Int64 // cell → responses

	requests, failed, faultFailed atomic.Int64
	faultOn                       atomic.Bool
	lastKey                       string     // non-terminal view: last step/status drawn
	lastDraw                      time.Time  // and when
	mu                            sync.Mutex // guards faultAt
	faultAt                       time.Time
}

// cellNames are the demo's cells (internal/canaryrig): two stable, one
// canary, in display order.
var cellNames = []struct{ name, version string }{
	{canaryrig.StableA, "v1"}, {canaryrig.StableB, "v1"}, {canaryrig.Canary, "v2"},
}

func (d *run) run(ctx context.Context) (*Summary, error) {
	admin := d.o.AdminAddr
	if admin == "" {
		admin = freeOr("127.0.0.1:9901")
	}
	for _, c := range cellNames {
		d.counts[c.name] = &atomic.Int64{}
	}
	rig, err := canaryrig.Start(canaryrig.Options{Name: "demo", AdminAddr: admin, Tables: demoTables, Logger: d.o.Logger})
	if err != nil {
		return nil, err
	}
	defer rig.Close()
	d.rig, d.node = rig, rig.Node
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	go d.load(loadCtx, loadDone)
	defer func() { stopLoad(); <-loadDone }()

	// Let the baseline warm up so the judge has data from the start.
	if !canaryrig.Sleep(ctx, d.bake()) {
		return d.summary("")
	}
	id, err := d.node.Controller().Start(d.plan(), "demo")
	if err != nil {
		return nil, fmt.Errorf("start rollout: %w", err)
	}
	end := time.Now().Add(d.o.Duration)
	view := time.NewTicker(500 * time.Millisecond)
	defer view.Stop()
	for {
		select {
		case <-ctx.Done():
			return d.summary(id)
		case <-view.C:
		}
		v, err := d.node.Controller().Rollout(id)
		if err != nil {
			return nil, err
		}
		d.maybeFault(v)
		d.draw(v)
		if v.Status.Terminal() && !d.o.Keep {
			return d.summary(id)
		}
		if time.Now().After(end) && !d.o.Keep {
			return d.summary(id)
		}
	}
}

// bake is the per-step bake time: the run is scaled to fit Duration.
func (d *run) bake() time.Duration {
	b := d.o.Duration / 12
	return max(b, time.Second)
}

// plan is the demo's canary plan.
func (d *run) plan() rollout.Plan {
	return canaryrig.Plan("ranker-v2", d.bake(), 10, rollout.Release{Version: "v2", Notes: "cellgate demo"})
}

// maybeFault injects the canary fault once the rollout reaches the step.
func (d *run) maybeFault(v rollout.RolloutView) {
	if !d.o.Fault || d.faultOn.Load() || v.Step < d.o.FaultAtStep || v.Status.Terminal() {
		return
	}
	d.rig.Cells[canaryrig.Canary].SetErrorRatio(d.o.FaultRatio)
	d.mu.Lock()
	d.faultAt = time.Now()
	d.mu.Unlock()
	d.faultOn.Store(true)
}

// demoTables is the demo node's config beyond the rig's: seconds-scale SLO
// windows and a half-second tick, so a whole rollout fits in a minute.
const demoTables = `[routing]
sticky_key = ["header:X-User-ID"]
[slo]
fast_burn = { long = "30s", short = "3s", rate = 14.4 }
slow_burn = { long = "60s", short = "5s", rate = 6 }
min_requests = 10
[rollout]
tick = "500ms"
degraded_ticks = 3
`

// freeOr returns addr if it can be bound now, else a free loopback port.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// load drives keyed open-loop traffic through the node until ctx is done.
func (d *run) load(ctx context.Context, done chan<- error) {
	cfg := bench.DefaultConfig()
	cfg.URL = "http://" + d.node.Addr() + "/"
	cfg.Rate = d.o.Rate
	cfg.Connections = 16
	cfg.Warmup = 0
	cfg.Duration = 0 // until cancelled
	cfg.Keys = 5000
	cfg.Timeout = 2 * time.Second
	_, err := bench.Run(ctx, cfg, bench.Hooks{OnResponse: d.observe})
	done <- err
}

// observe counts one response (from the load generator's goroutines).
func (d *run) observe(ob bench.Observation) {
	d.requests.Add(1)
	if c := d.counts[string(ob.Cell)]; c != nil {
		c.Add(1)
	}
	if ob.Failed {
		d.failed.Add(1)
		if d.faultOn.Load() {
			d.faultFailed.Add(1)
		}
	}
}
