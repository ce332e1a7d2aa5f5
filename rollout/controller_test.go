package rollout

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealthyCanaryPromotes(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	for _, pct := range []float64{1, 5, 25, 50, 100} {
		r.tick(time.Second) // enter the step (cap 100: reached at once, bake starts)
		v := r.view(id)
		if v.StepPercent != pct || v.Status != StatusProgressing {
			t.Fatalf("after entering: step %g status %s, want %g progressing", v.StepPercent, v.Status, pct)
		}
		assertWeights(t, r.bal.weights(), Weights{"canary-1": pct, "stable-a": (100 - pct) / 2, "stable-b": (100 - pct) / 2})
		r.tick(5 * time.Second) // half the bake: holds
		if got := r.view(id).StepPercent; got != pct {
			t.Fatalf("promoted before the bake ended: %g", got)
		}
		r.clock.Advance(5 * time.Second)
	}
	r.tick(0)
	v := r.view(id)
	if v.Status != StatusPromoted {
		t.Fatalf("status %s, want promoted (%s)", v.Status, v.Reason)
	}
	rel, _ := r.c.Releases()
	if len(rel) != 1 || rel[0].Outcome != StatusPromoted || rel[0].Version != "v2" || rel[0].Verdict == nil || rel[0].End.IsZero() {
		t.Fatalf("release catalog: %+v", rel)
	}
	if len(r.c.Active()) != 0 {
		t.Fatalf("still active: %v", r.c.Active())
	}
	// start + 5 steps + promoted, each committed once.
	if n := len(v.Decisions); n != 7 {
		t.Fatalf("%d decisions, want 7: %+v", n, v.Decisions)
	}
}

func TestMinRequestsHoldsPromotion(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 99)
	r.tick(time.Second)
	r.tick(time.Minute)
	if got := r.view(id).StepPercent; got != 1 {
		t.Fatalf("promoted on 99 < 100 samples: step %g", got)
	}
	r.judge.set(StateHealthy, 100)
	r.tick(time.Second)
	if got := r.view(id).StepPercent; got != 5 {
		t.Fatalf("step %g, want 5", got)
	}
}

func TestFailingRevertsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		revertTo string
		want     float64 // canary weight after the revert
	}{
		{"canary default goes to 0", "", 0},
		{"last healthy keeps the 1% step", RevertLastHealthy, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Options{})
			p := canaryPlan()
			p.RevertTo = tc.revertTo
			id := r.start(p)
			r.judge.set(StateHealthy, 1000)
			r.tick(time.Second)      // step 1 %
			r.tick(10 * time.Second) // baked → step 5 %
			r.judge.set(StateFailing, 1000)
			r.tick(time.Second)
			v := r.view(id)
			if v.Status != StatusRolledBack {
				t.Fatalf("status %s", v.Status)
			}
			assertWeights(t, r.bal.weights(), Weights{"canary-1": tc.want})
			last := v.Decisions[len(v.Decisions)-1]
			if last.Action != ActionRollback || last.Verdict == nil || last.Verdict.State != StateFailing || last.Before["canary-1"] != 5 {
				t.Fatalf("last decision: %+v", last)
			}
		})
	}
}

func TestDegradedTicksRevert(t *testing.T) {
	r := newRig(t, Options{DegradedTicks: 3})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	r.judge.set(StateDegraded, 1000)
	r.tick(time.Second)
	r.tick(time.Second)
	r.judge.set(StateInconclusive, 1000) // breaks the streak
	r.tick(time.Second)
	r.judge.set(StateDegraded, 1000)
	r.tick(time.Second)
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusProgressing || r.c.activeDoc(id).Degraded != 2 {
		t.Fatalf("reverted early: %s", v.Status)
	}
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusRolledBack {
		t.Fatalf("status %s, want rolled_back", v.Status)
	}
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 0, "stable-a": 50})
}

func TestPerTickCapRampsAndRevertIsNotCapped(t *testing.T) {
	r := newRig(t, Options{})
	p := canaryPlan()
	p.Steps, p.MaxStepPerTick, p.Bake = []float64{50, 100}, 25, 0
	id := r.start(p)
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 25, "stable-a": 37.5})
	if got := r.view(id).Decisions; got[len(got)-1].Action != ActionStep {
		t.Fatalf("want a step decision, got %+v", got[len(got)-1])
	}
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 50, "stable-a": 25})
	r.tick(time.Second) // baked (bake 0) → step 100, capped to 75
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 75})
	r.judge.set(StateFailing, 1000)
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 0, "stable-a": 50, "stable-b": 50})
}

func TestApprovalGate(t *testing.T) {
	r := newRig(t, Options{})
	p := canaryPlan()
	p.Steps, p.ApproveAt, p.Bake = []float64{50, 100}, []float64{50}, 0
	id := r.start(p)
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusAwaitingApproval {
		t.Fatalf("status %s", v.Status)
	}
	r.tick(time.Hour)
	if v := r.view(id); v.Status != StatusAwaitingApproval || v.StepPercent != 50 {
		t.Fatalf("moved without approval: %s %g", v.Status, v.StepPercent)
	}
	if err := r.c.Approve(id, "admin:ops"); err != nil {
		t.Fatal(err)
	}
	r.tick(time.Second)
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusPromoted {
		t.Fatalf("status %s", v.Status)
	}
}

func TestRollingAndBlueGreenStepBack(t *testing.T) {
	t.Run("rolling steps back one wave", func(t *testing.T) {
		r := newRig(t, Options{})
		p := Plan{Name: "roll", Strategy: StrategyRolling, Targets: []string{"green-1", "green-2"},
			Baseline: []string{"blue-1", "blue-2"}, Steps: []float64{50, 100}, MaxStepPerTick: 100}
		id := r.start(p)
		r.judge.set(StateHealthy, 1000)
		r.tick(time.Second)
		assertWeights(t, r.bal.weights(), Weights{"green-1": 100, "blue-1": 0, "green-2": 0, "blue-2": 100})
		r.tick(time.Second)
		assertWeights(t, r.bal.weights(), Weights{"green-2": 100, "blue-2": 0})
		r.judge.set(StateFailing, 1000)
		r.tick(time.Second)
		if r.view(id).Status != StatusRolledBack {
			t.Fatal("not rolled back")
		}
		assertWeights(t, r.bal.weights(), Weights{"green-1": 100, "blue-1": 0, "green-2": 0, "blue-2": 100})
	})
	t.Run("bluegreen switches back whole", func(t *testing.T) {
		r := newRig(t, Options{})
		p := Plan{Name: "bg", Strategy: StrategyBlueGreen, Targets: []string{"green-1"},
			Baseline: []string{"blue-1"}, Steps: []float64{5, 100}, MaxStepPerTick: 100}
		r.start(p)
		r.judge.set(StateHealthy, 1000)
		r.tick(time.Second)
		assertWeights(t, r.bal.weights(), Weights{"green-1": 5, "blue-1": 95})
		r.tick(time.Second)
		assertWeights(t, r.bal.weights(), Weights{"green-1": 100, "blue-1": 0})
		r.judge.set(StateFailing, 1000)
		r.tick(time.Second)
		assertWeights(t, r.bal.weights(), Weights{"green-1": 0, "blue-1": 100})
	})
}

func TestSetWeightPausesRolloutOnItsCells(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	if err := r.c.SetWeight("canary-1", 0, "admin:ops", "looks odd"); err != nil {
		t.Fatal(err)
	}
	v := r.view(id)
	if v.Status != StatusPaused || v.Reason == "" || r.bal.weights()["canary-1"] != 0 {
		t.Fatalf("status %s reason %q weights %v", v.Status, v.Reason, r.bal.weights())
	}
	r.tick(time.Hour) // paused: no promotion, weights stay manual
	if r.bal.weights()["canary-1"] != 0 {
		t.Fatal("controller fought the operator")
	}
	if err := r.c.Resume(id, "admin:ops"); err != nil {
		t.Fatal(err)
	}
	r.tick(time.Second) // ramps back to the step and restarts the bake
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 1})
	r.tick(time.Second)
	if got := r.view(id).StepPercent; got != 1 {
		t.Fatalf("promoted without a fresh bake: %g", got)
	}
	// A cell outside any rollout: the next version of its manual document.
	if err := r.c.SetWeight("blue-2", 7, "admin:ops", ""); err != nil {
		t.Fatal(err)
	}
	if r.bal.weights()["blue-2"] != 7 || r.c.Weights()["blue-2"] != 7 {
		t.Fatal("manual weight not applied")
	}
	evs, _ := r.c.Audit(0, 0)
	if last := evs[len(evs)-1]; last.Action != ActionSetWeight || last.Rollout != "" || last.Generation != 1 || last.After["blue-2"] != 7 || last.Before["blue-2"] != 100 {
		t.Fatalf("audit: %+v", last)
	}
}

func TestStartErrors(t *testing.T) {
	r := newRig(t, Options{})
	r.start(canaryPlan())
	p := canaryPlan()
	p.Name, p.Targets, p.Baseline = "other", []string{"green-1"}, []string{"stable-b"}
	if _, err := r.c.Start(p, "admin:x"); !errors.Is(err, ErrConflict) {
		t.Fatalf("overlap: %v", err)
	}
	p.Baseline = []string{"nope"}
	_, err := r.c.Start(p, "admin:x")
	var ve *ValidationError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
		t.Fatalf("unknown cell: %v", err)
	}
	if err := r.c.Pause("missing", "admin:x", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := r.c.SetWeight("missing", 1, "admin:x", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing cell: %v", err)
	}
	if err := r.c.SetWeight("blue-1", -1, "admin:x", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative weight: %v", err)
	}
	zero := Plan{Name: "z", Targets: []string{"green-2"}, Baseline: []string{"green-1"}}
	if _, err := r.c.Start(zero, "admin:x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("weightless plan: %v", err)
	}
}

func TestNonDeciderRevertsButNeverPromotes(t *testing.T) {
	r := newRig(t, Options{})
	var follower atomic.Bool
	r.c.hooks.Decider = func() bool { return !follower.Load() }
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second) // the decider entered step 1
	follower.Store(true)
	r.tick(time.Minute)
	if v := r.view(id); v.Step != 1 {
		t.Fatalf("non-decider promoted to step %d", v.Step)
	}
	r.judge.set(StateFailing, 1000)
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusRolledBack {
		t.Fatalf("non-decider did not revert: %s", v.Status)
	}
}

func TestApplyFailureIsRetriedNextTick(t *testing.T) {
	r := newRig(t, Options{})
	r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.bal.mu.Lock()
	r.bal.fail = true
	r.bal.mu.Unlock()
	r.tick(time.Second) // committed, Apply failed
	r.bal.mu.Lock()
	r.bal.fail = false
	r.bal.mu.Unlock()
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 1, "stable-a": 49.5})
}

// lastRevert is the revert flag of the balancer's last successful Apply.
func (f *fakeBalancer) lastRevert() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reverts) > 0 && f.reverts[len(f.reverts)-1]
}

// TestApplySaysRevert: Apply is told which changes undo a rollout — its
// own rollback, an operator's abort, a peer's rollback — and which move it
// forward, and a failed revert is re-sent as a revert.
func TestApplySaysRevert(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	if r.bal.lastRevert() {
		t.Fatal("starting a rollout applied as a revert")
	}
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 1})
	if r.bal.lastRevert() {
		t.Fatal("a promotion step applied as a revert")
	}
	r.pubMu.Lock()
	atStep := r.pubs[len(r.pubs)-1]
	r.pubMu.Unlock()

	// A failing verdict rolls back while the balancer is down: nothing is
	// applied, and the retry on the next tick still says revert.
	r.judge.set(StateFailing, 1000)
	r.bal.mu.Lock()
	r.bal.fail = true
	r.bal.mu.Unlock()
	r.tick(time.Second)
	if v := r.view(id); v.Status != StatusRolledBack {
		t.Fatalf("status %s, want rolled_back", v.Status)
	}
	r.bal.mu.Lock()
	r.bal.fail = false
	r.bal.mu.Unlock()
	r.tick(time.Second)
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 0})
	if !r.bal.lastRevert() {
		t.Fatal("the re-sent rollback was not applied as a revert")
	}
	r.pubMu.Lock()
	rolledBack := r.pubs[len(r.pubs)-1]
	r.pubMu.Unlock()

	// An operator's abort.
	r2 := newRig(t, Options{})
	id2 := r2.start(canaryPlan())
	r2.judge.set(StateHealthy, 1000)
	r2.tick(time.Second)
	if err := r2.c.Abort(id2, "admin:test", "bad deploy"); err != nil {
		t.Fatal(err)
	}
	assertWeights(t, r2.bal.weights(), Weights{"canary-1": 0})
	if !r2.bal.lastRevert() {
		t.Fatal("an abort was not applied as a revert")
	}

	// A peer's rollback, on a node that had the rollout at its first step.
	r3 := newRig(t, Options{})
	if ok, err := r3.c.ApplyRemote(atStep, "peer-1"); !ok || err != nil {
		t.Fatalf("ApplyRemote(step) = %v, %v", ok, err)
	}
	assertWeights(t, r3.bal.weights(), Weights{"canary-1": 1})
	if r3.bal.lastRevert() {
		t.Fatal("a peer's promotion step applied as a revert")
	}
	if ok, err := r3.c.ApplyRemote(rolledBack, "peer-1"); !ok || err != nil {
		t.Fatalf("ApplyRemote(rollback) = %v, %v", ok, err)
	}
	assertWeights(t, r3.bal.weights(), Weights{"canary-1": 0})
	if !r3.bal.lastRevert() {
		t.Fatal("a peer's rollback was not applied as a revert")
	}
}

func TestPublishAfterEveryLocalChange(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if len(r.pubs) != 2 || r.pubs[1].ID != id || r.pubs[1].Generation != 2 || r.pubs[1].Step != 0 {
		t.Fatalf("published %+v", r.pubs)
	}
}

// TestStateEvents is the state × event table: every status meets every
// event, and the resulting status (or error) is checked.
func TestStateEvents(t *testing.T) {
	// Plan: steps 1, 5, 100 with an approval gate at 5; bake 10s.
	plan := func() Plan {
		p := canaryPlan()
		p.Steps, p.ApproveAt = []float64{1, 5, 100}, []float64{5}
		return p
	}
	setups := map[Status]func(r *rig, id string){
		StatusProgressing: func(r *rig, id string) {},
		StatusPaused:      func(r *rig, id string) { must(r.t, r.c.Pause(id, "admin:t", "")) },
		StatusAwaitingApproval: func(r *rig, id string) {
			r.judge.set(StateHealthy, 1000)
			r.tick(10 * time.Second) // → step 5
			r.tick(10 * time.Second) // baked → awaiting
		},
		StatusPromoted: func(r *rig, id string) {
			must(r.t, r.c.PromoteNow(id, "admin:t"))
			must(r.t, r.c.PromoteNow(id, "admin:t"))
		},
		StatusRolledBack: func(r *rig, id string) { r.judge.set(StateFailing, 1000); r.tick(time.Second) },
		StatusAborted:    func(r *rig, id string) { must(r.t, r.c.Abort(id, "admin:t", "")) },
	}
	tick := func(state string) func(r *rig, id string) error {
		return func(r *rig, id string) error {
			r.judge.set(state, 1000)
			return r.c.Tick(r.clock.Advance(10 * time.Second))
		}
	}
	events := map[string]func(r *rig, id string) error{
		"tick_healthy":      tick(StateHealthy),
		"tick_inconclusive": tick(StateInconclusive),
		"tick_degraded":     tick(StateDegraded),
		"tick_failing":      tick(StateFailing),
		"pause":             func(r *rig, id string) error { return r.c.Pause(id, "admin:t", "why") },
		"resume":            func(r *rig, id string) error { return r.c.Resume(id, "admin:t") },
		"approve":           func(r *rig, id string) error { return r.c.Approve(id, "admin:t") },
		"abort":             func(r *rig, id string) error { return r.c.Abort(id, "admin:t", "why") },
		"promote_now":       func(r *rig, id string) error { return r.c.PromoteNow(id, "admin:t") },
		"set_weight":        func(r *rig, id string) error { return r.c.SetWeight("canary-1", 3, "admin:t", "why") },
	}
	const (
		P, Pa, A, Pr, RB, Ab = StatusProgressing, StatusPaused, StatusAwaitingApproval, StatusPromoted, StatusRolledBack, StatusAborted
		bad                  = Status("ErrBadState")
	)
	// want[state][event]: the status after the event, or bad for ErrBadState.
	want := map[Status]map[string]Status{
		P:  {"tick_healthy": P, "tick_inconclusive": P, "tick_degraded": P, "tick_failing": RB, "pause": Pa, "resume": bad, "approve": bad, "abort": Ab, "promote_now": P, "set_weight": Pa},
		Pa: {"tick_healthy": Pa, "tick_inconclusive": Pa, "tick_degraded": Pa, "tick_failing": RB, "pause": bad, "resume": P, "approve": bad, "abort": Ab, "promote_now": P, "set_weight": Pa},
		A:  {"tick_healthy": A, "tick_inconclusive": A, "tick_degraded": A, "tick_failing": RB, "pause": Pa, "resume": bad, "approve": P, "abort": Ab, "promote_now": Pr, "set_weight": Pa},
		Pr: {"tick_healthy": Pr, "tick_inconclusive": Pr, "tick_degraded": Pr, "tick_failing": Pr, "pause": bad, "resume": bad, "approve": bad, "abort": bad, "promote_now": bad, "set_weight": Pr},
		RB: {"tick_healthy": RB, "tick_inconclusive": RB, "tick_degraded": RB, "tick_failing": RB, "pause": bad, "resume": bad, "approve": bad, "abort": bad, "promote_now": bad, "set_weight": RB},
		Ab: {"tick_healthy": Ab, "tick_inconclusive": Ab, "tick_degraded": Ab, "tick_failing": Ab, "pause": bad, "resume": bad, "approve": bad, "abort": bad, "promote_now": bad, "set_weight": Ab},
	}
	for state, row := range want {
		for event, wantStatus := range row {
			t.Run(fmt.Sprintf("%s/%s", state, event), func(t *testing.T) {
				r := newRig(t, Options{DegradedTicks: 2})
				id := r.start(plan())
				r.judge.set(StateHealthy, 1000)
				r.tick(time.Second) // enter step 1 %
				setups[state](r, id)
				if got := r.view(id).Status; got != state {
					t.Fatalf("setup reached %s, want %s", got, state)
				}
				before := r.view(id)
				err := events[event](r, id)
				after := r.view(id)
				if wantStatus == bad {
					if !errors.Is(err, ErrBadState) {
						t.Fatalf("err = %v, want ErrBadState", err)
					}
					if after.Generation != before.Generation {
						t.Fatal("a refused action changed the document")
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if after.Status != wantStatus {
					t.Fatalf("status %s, want %s (%s)", after.Status, wantStatus, after.Reason)
				}
				checkInvariants(t, r, after)
			})
		}
	}
}

// checkInvariants holds after every event: the balancer has the document's
// weights, finished rollouts are not active, reverted ones carry W0.
func checkInvariants(t *testing.T, r *rig, v RolloutView) {
	t.Helper()
	if !v.Status.Terminal() {
		assertWeights(t, r.bal.weights(), v.Weights)
	}
	if v.Status == StatusRolledBack || v.Status == StatusAborted {
		assertWeights(t, v.Weights, v.W0)
	}
	active := r.c.Active()
	if v.Status.Terminal() == (len(active) == 1) {
		t.Fatalf("status %s but active = %v", v.Status, active)
	}
	last := v.Decisions[len(v.Decisions)-1]
	if last.Generation != v.Generation || last.Status != v.Status {
		t.Fatalf("last decision %+v does not match the document (gen %d, %s)", last, v.Generation, v.Status)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
