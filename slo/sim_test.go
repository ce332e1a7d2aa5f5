package slo

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// simResult is the outcome of one simulated rollout.
type simResult struct {
	state State         // the worst state seen (Healthy when nothing fired)
	after time.Duration // first degraded-or-worse verdict after onset (-1: none)
	fail  time.Duration // first failing verdict after onset (-1: none)
	v     Verdict       // the first degraded-or-worse verdict
	// revert is when the canary's weight went to 0 after onset (-1: never):
	// at a failing verdict, or at the DegradedTicks-th degraded tick in a row.
	revert time.Duration
	// served counts canary requests from onset until the revert.
	served int
	// looks counts judgements: ticks (every node) and alarm reactions.
	looks, reactions int
}

// The controller model of the simulations: it ticks every second (a
// degraded streak of simDegradedTicks reverts) and, between ticks, reacts
// to a node's alarm simReactDelay after the request that raised it (the
// wake-up, the judgement, the journal's fsync and the weight swap), at
// most once per simReactGap, reverting only on failing. The real
// controller does the same (rollout.Controller.React).
const (
	simDegradedTicks = 3
	simReactDelay    = 5 * time.Millisecond
	simReactGap      = 10 * time.Millisecond
)

// simNode is one proxy node's controller state in a simulation.
type simNode struct {
	name      string
	reg       *Registry
	degraded  int
	pending   bool      // an alarm was received, a reaction is due at reactAt
	reactAt   time.Time // when the pending reaction judges
	lastReact time.Time
	sent      map[string]time.Time // gossip: through of the last delta sent per cell
}

// simRollout runs one rollout of the canary against the baseline cells on
// every node of w until it is decided or dur has passed.
type simRollout struct {
	w             *simWorld
	targets, base []string
	canary        *simCell
	since         time.Time
	nodes         []*simNode
	stopAt        State
	react         bool // alarms drive reactions between ticks
	// degradedReverts ends the run at the simDegradedTicks-th degraded
	// tick in a row, as the controller would; otherwise the run goes on
	// until stopAt (the judge-quality tables measure detection).
	degradedReverts bool
	// perSecond, when set, is called before each simulated second after
	// onset (s counts from 0), to change the cells' behaviour mid-run.
	perSecond      func(s int)
	res            simResult
	done, reverted bool
}

func newSimRollout(w *simWorld, canary *simCell, base []string, stopAt State, react bool) *simRollout {
	r := &simRollout{w: w, targets: []string{canary.name}, base: base, canary: canary, since: w.now,
		stopAt: stopAt, react: react, res: simResult{state: Healthy, after: -1, fail: -1, revert: -1}}
	watch := map[string][]string{canary.name: base}
	for i, reg := range w.regs {
		reg.SetFleetSize(len(w.regs))
		if react {
			reg.Watch(watch)
		}
		r.nodes = append(r.nodes, &simNode{name: fmt.Sprintf("node-%d", i), reg: reg, sent: map[string]time.Time{}})
	}
	w.before, w.after = r.before, r.after
	return r
}

// run simulates up to dur seconds after onset (the rollout's since).
func (r *simRollout) run(dur time.Duration) simResult {
	for s := 1; s <= int(dur/time.Second) && !r.done; s++ {
		if r.perSecond != nil {
			r.perSecond(s - 1)
		}
		r.w.second()
		if r.done {
			break
		}
		tick := r.w.now
		r.reactUntil(tick)
		if r.done {
			break
		}
		r.gossip()
		for _, n := range r.nodes {
			r.look(n, tick, true)
			if r.done {
				break
			}
		}
	}
	r.w.before, r.w.after, r.w.stop = nil, nil, false
	return r.res
}

// before runs reactions due before the next request.
func (r *simRollout) before(e *simEvent) { r.reactUntil(time.Unix(0, e.at)) }

// after counts canary requests and takes the recording node's alarm.
func (r *simRollout) after(e *simEvent) {
	if e.cell == r.canary {
		r.res.served++
	}
	if !r.react {
		return
	}
	n := r.nodes[e.node]
	select {
	case <-n.reg.Alarms():
		if !n.pending {
			n.pending = true
			n.reactAt = maxTime(time.Unix(0, e.at).Add(simReactDelay), n.lastReact.Add(simReactGap))
		}
	default:
	}
}

// reactUntil runs every reaction due by t, in time order.
func (r *simRollout) reactUntil(t time.Time) {
	for !r.done {
		var next *simNode
		for _, n := range r.nodes {
			if n.pending && !n.reactAt.After(t) && (next == nil || n.reactAt.Before(next.reactAt)) {
				next = n
			}
		}
		if next == nil {
			return
		}
		next.pending, next.lastReact = false, next.reactAt
		saved := r.w.now
		r.w.now = next.reactAt
		r.res.reactions++
		r.look(next, next.reactAt, false)
		r.w.now = saved
	}
}

// look is one judgement by node n: a tick (which counts degraded streaks)
// or a reaction (which acts on failing only, so it judges the failing
// rules only, as cheaply as judgeFailing can).
func (r *simRollout) look(n *simNode, at time.Time, tick bool) {
	r.res.looks++
	var v Verdict
	if tick {
		v = n.reg.Judge(r.targets, r.base, r.since, nil)
	} else {
		v = n.reg.judgeFailing(r.targets, r.base, r.since)
	}
	rel := at.Sub(r.since)
	if v.State >= Degraded && r.res.after < 0 {
		r.res.after, r.res.v = rel, v
	}
	if v.State == Failing && r.res.fail < 0 {
		r.res.fail, r.res.v = rel, v
	}
	r.res.state = max(r.res.state, v.State)
	revert := v.State == Failing
	if tick {
		if v.State == Degraded {
			n.degraded++
			revert = revert || (r.degradedReverts && n.degraded >= simDegradedTicks)
		} else {
			n.degraded = 0
		}
	}
	if revert && !r.reverted {
		r.reverted, r.res.revert = true, rel
	}
	if r.reverted || v.State >= r.stopAt {
		r.done, r.w.stop = true, true
	}
}

// gossip ships every node's complete intervals to every other node, as
// the fleet does every tick.
func (r *simRollout) gossip() {
	if len(r.nodes) < 2 {
		return
	}
	for _, from := range r.nodes {
		for _, cell := range r.w.cells {
			since := from.sent[cell.name]
			if since.IsZero() {
				since = r.w.now.Add(-time.Minute)
			}
			d := from.reg.ExportDelta(from.name, cell.name, since)
			from.sent[cell.name] = d.Through
			for _, to := range r.nodes {
				if to != from {
					if err := to.reg.MergeRemote(d); err != nil {
						panic(err)
					}
				}
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// simRun runs one rollout: warm seconds of everyone at baseline behaviour,
// then the canary changes (errFactor × baseline error ratio, latency ×
// latScale) and the judge looks every second and on alarms for dur, until
// it says stopAt or worse or the canary is reverted.
func simRun(seed uint64, canaryRPS float64, errFactor, latScale float64, warm, dur time.Duration, stopAt State) simResult {
	const baseErr = 0.001
	w := newSimWorld(seed, simConfig())
	w.add(&simCell{name: "base-a", rps: 150, errRatio: baseErr, latScale: 1})
	w.add(&simCell{name: "base-b", rps: 150, errRatio: baseErr, latScale: 1})
	canary := w.add(&simCell{name: "canary", rps: canaryRPS, errRatio: baseErr, latScale: 1})
	for range int(warm / time.Second) {
		w.second()
	}
	canary.errRatio, canary.latScale = baseErr*errFactor, latScale
	return newSimRollout(w, canary, []string{"base-a", "base-b"}, stopAt, true).run(dur)
}

func TestSimFailingWithinTwoSeconds(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := simRun(seed, 100, 200, 1, 60*time.Second, 10*time.Second, Failing)
		if r.state != Failing || r.fail > 2*time.Second {
			t.Fatalf("seed %d: 20%% errors at 100 rps: %v after %v (rule %s: %s)", seed, r.state, r.fail, r.v.Rule, r.v.Reason)
		}
		t.Logf("seed %d: failing after %v: %s", seed, r.fail, r.v.Reason)
	}
}

var simFull = flag.Bool("slo.full", false, "run the full 1000-rollout false-positive simulation")

// simMany runs n seeded rollouts on GOMAXPROCS workers.
func simMany(n int, run func(i int) simResult) []simResult {
	out := make([]simResult, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				out[i] = run(i)
			}
		}()
	}
	wg.Wait()
	return out
}

// simRPS is the canary traffic of simulation i: 50–500 rps, seeded.
func simRPS(i int) float64 {
	return 50 + 450*rand.New(rand.NewPCG(uint64(i), 99)).Float64()
}

// TestSimHealthyCanaries: canaries that behave exactly like baseline
// (same error ratio and latency distribution, independent noise), judged
// every second for a 10-minute step, must be called degraded or failing in
// at most 1 % of rollouts. A rollout costs ~0.1 s of CPU, so the default
// run does 300 (~15 s on two cores), -short 100, -race 2, and
// -slo.full the whole 1000 (~50 s on two cores; README.md has its result).
func TestSimHealthyCanaries(t *testing.T) {
	n := 300
	switch {
	case *simFull:
		n = 1000
	case testing.Short():
		n = 100
	}
	if raceEnabled { // after -slo.full: the race detector makes a rollout take seconds
		n = 2 // the race detector slows a rollout to seconds; this checks the path only
	}
	res := simMany(n, func(i int) simResult {
		return simRun(uint64(1000+i), simRPS(i), 1, 1, 60*time.Second, 10*time.Minute, Degraded)
	})
	bad := 0
	for i, r := range res {
		if r.state >= Degraded {
			bad++
			t.Logf("rollout %d (%.0f rps): %v after %v by %s: %s", i, simRPS(i), r.state, r.after, r.v.Rule, r.v.Reason)
		}
	}
	t.Logf("%d of %d healthy canaries judged degraded or failing (%.2f %%)", bad, n, 100*float64(bad)/float64(n))
	if float64(bad) > 0.01*float64(n) {
		t.Fatalf("false-positive rate %d/%d above 1 %%", bad, n)
	}
}

// simFleetRun is simRun on a fleet of nodes proxy nodes: every request
// lands on one of them at random, each node judges every second and on its
// own alarms at Alpha / nodes, and the nodes exchange their complete
// intervals every second as gossip does. A rollout is falsely reverted
// when any node says degraded or failing.
func simFleetRun(seed uint64, nodes int, canaryRPS float64, warm, dur time.Duration) simResult {
	const baseErr = 0.001
	w := newSimFleet(seed, simConfig(), nodes)
	w.add(&simCell{name: "base-a", rps: 150, errRatio: baseErr, latScale: 1})
	w.add(&simCell{name: "base-b", rps: 150, errRatio: baseErr, latScale: 1})
	canary := w.add(&simCell{name: "canary", rps: canaryRPS, errRatio: baseErr, latScale: 1})
	for range int(warm / time.Second) {
		w.second()
	}
	return newSimRollout(w, canary, []string{"base-a", "base-b"}, Degraded, true).run(dur)
}

var simFleetN = flag.Int("slo.fleetn", 0, "number of 5-node fleet rollouts in TestSimHealthyFleet (0: 20, -slo.full 1000)")

// TestSimHealthyFleet is TestSimHealthyCanaries on a 5-node fleet: the
// false-revert budget is the fleet's, so at most 1 % of healthy rollouts
// may be called degraded or failing by any node. A fleet rollout costs
// five times a single node's (~2 s of CPU), so the default run does 20,
// -short 5, -slo.fleetn N any number, -slo.full 1000 (README.md has the
// measured result and its command).
func TestSimHealthyFleet(t *testing.T) {
	n := 20
	switch {
	case *simFleetN > 0:
		n = *simFleetN
	case *simFull:
		n = 1000
	case testing.Short():
		n = 5
	}
	dur := 10 * time.Minute
	if raceEnabled { // the race detector makes a fleet rollout take minutes: the path only
		n, dur = 1, 20*time.Second
	}
	res := simMany(n, func(i int) simResult {
		return simFleetRun(uint64(50000+i), 5, simRPS(i), 60*time.Second, dur)
	})
	bad := 0
	for i, r := range res {
		if r.state >= Degraded {
			bad++
			t.Logf("fleet rollout %d (%.0f rps): %v after %v by %s: %s", i, simRPS(i), r.state, r.after, r.v.Rule, r.v.Reason)
		}
	}
	t.Logf("%d of %d healthy canaries on a 5-node fleet judged degraded or failing by some node (%.2f %%)", bad, n, 100*float64(bad)/float64(n))
	if float64(bad) > 0.01*float64(n) {
		t.Fatalf("fleet false-positive rate %d/%d above 1 %%", bad, n)
	}
}

func BenchmarkSimRollout(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		simRun(uint64(i), 275, 1, 1, 10*time.Second, 10*time.Minute, Degraded)
	}
}
