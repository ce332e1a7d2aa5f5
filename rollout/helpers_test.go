package rollout

import (
	"maps"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}

// fakeJudge answers whatever verdict the test set last.
type fakeJudge struct {
	mu    sync.Mutex
	v     Verdict
	calls int
	since time.Time
}

func (f *fakeJudge) set(state string, samples int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v = Verdict{State: state, Rule: "fake", Reason: "test says " + state, Samples: samples, Numbers: []byte(`{"error_ratio":0.01}`)}
}

func (f *fakeJudge) Judge(_ *Plan, since, _ time.Time) Verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.since = since
	return f.v
}

// fakeBalancer records applied weights.
type fakeBalancer struct {
	mu      sync.Mutex
	w       Weights
	calls   int
	reverts []bool // per successful call: was it a revert
	fail    bool
}

func (f *fakeBalancer) Apply(w map[string]float64, revert bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errTestApply
	}
	f.calls++
	f.reverts = append(f.reverts, revert)
	if f.w == nil {
		f.w = Weights{}
	}
	maps.Copy(f.w, w)
	return nil
}

func (f *fakeBalancer) weights() Weights {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.w)
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTestApply = testErr("balancer down")

// rig is a controller wired to fakes over a journal in a temp dir.
type rig struct {
	t     *testing.T
	c     *Controller
	clock *fakeClock
	judge *fakeJudge
	bal   *fakeBalancer
	path  string
	pubs  []Document
	pubMu sync.Mutex
}

func testCells() Weights {
	return Weights{"stable-a": 50, "stable-b": 50, "canary-1": 0, "blue-1": 100, "green-1": 0, "blue-2": 100, "green-2": 0}
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	r := &rig{t: t, clock: newFakeClock(), judge: &fakeJudge{}, bal: &fakeBalancer{}, path: filepath.Join(t.TempDir(), "state.db")}
	r.judge.set(StateInconclusive, 0)
	opts.NoSync = true // a test machine's fsync latency is not what these tests are about
	if opts.Cells == nil {
		opts.Cells = testCells()
	}
	if opts.NewID == nil {
		n := 0
		opts.NewID = func(p *Plan, _ time.Time) string { n++; return p.Name + "-" + strconv.Itoa(n) }
	}
	r.open(opts)
	return r
}

func (r *rig) hooks() Hooks {
	return Hooks{
		Judge: r.judge.Judge, Apply: r.bal.Apply, Now: r.clock.Now,
		Publish: func(d Document) { r.pubMu.Lock(); r.pubs = append(r.pubs, d); r.pubMu.Unlock() },
	}
}

func (r *rig) open(opts Options) {
	r.t.Helper()
	c, err := Open(r.path, opts, r.hooks())
	if err != nil {
		r.t.Fatalf("open controller: %v", err)
	}
	r.c = c
	r.t.Cleanup(func() { c.Close() })
}

// tick advances the clock by d and ticks.
func (r *rig) tick(d time.Duration) {
	r.t.Helper()
	if err := r.c.Tick(r.clock.Advance(d)); err != nil {
		r.t.Fatalf("tick: %v", err)
	}
}

func (r *rig) start(p Plan) string {
	r.t.Helper()
	id, err := r.c.Start(p, "admin:test")
	if err != nil {
		r.t.Fatalf("start: %v", err)
	}
	return id
}

func (r *rig) view(id string) RolloutView {
	r.t.Helper()
	v, err := r.c.Rollout(id)
	if err != nil {
		r.t.Fatalf("rollout %s: %v", id, err)
	}
	return v
}

func canaryPlan() Plan {
	return Plan{
		Name: "ranker-v2", Strategy: StrategyCanary, Targets: []string{"canary-1"},
		Baseline: []string{"stable-a", "stable-b"}, Steps: []float64{1, 5, 25, 50, 100},
		Bake: Duration(10 * time.Second), MinRequests: 100, MaxStepPerTick: 100,
		Release: Release{Version: "v2", Notes: "new ranker"},
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

func assertWeights(t *testing.T, got, want Weights) {
	t.Helper()
	for c, w := range want {
		if !near(got[c], w) {
			t.Fatalf("weights: %s = %g, want %g (all: %v)", c, got[c], w, got)
		}
	}
}
