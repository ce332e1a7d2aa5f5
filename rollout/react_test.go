package rollout

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// TestReactRevertsOnlyFailing: React reverts a failing rollout at once, and
// does nothing else — a degraded verdict is not counted (ticks count
// streaks) and a healthy one does not promote (ticks promote).
func TestReactRevertsOnlyFailing(t *testing.T) {
	r := newRig(t, Options{DegradedTicks: 2})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second) // enters step 1 (1 %)
	before := r.view(id)
	for _, st := range []string{StateHealthy, StateDegraded, StateDegraded, StateInconclusive} {
		r.judge.set(st, 1000)
		if err := r.c.React(r.clock.Advance(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	after := r.view(id)
	if after.Status != StatusProgressing || len(after.Decisions) != len(before.Decisions) || r.c.activeDoc(id).Degraded != 0 {
		t.Fatalf("React changed a non-failing rollout: %s, %d → %d decisions, degraded %d",
			after.Status, len(before.Decisions), len(after.Decisions), r.c.activeDoc(id).Degraded)
	}
	r.judge.set(StateFailing, 3)
	if err := r.c.React(r.clock.Advance(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	v := r.view(id)
	if v.Status != StatusRolledBack {
		t.Fatalf("status %s after a failing verdict between ticks, want rolled_back", v.Status)
	}
	last := v.Decisions[len(v.Decisions)-1]
	if last.Action != ActionRollback || !strings.Contains(last.Reason, "between ticks") {
		t.Fatalf("last decision %s %q, want a rollback between ticks", last.Action, last.Reason)
	}
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 0, "stable-a": 50})
}

// TestReactBeforeFirstStepJudgesNothing: a rollout that has not entered a
// step has nothing to judge.
func TestReactBeforeFirstStepJudgesNothing(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateFailing, 3)
	if err := r.c.React(r.clock.Advance(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if st := r.view(id).Status; st != StatusProgressing || r.judge.calls != 0 {
		t.Fatalf("status %s, %d judge calls before the first step", st, r.judge.calls)
	}
}

// TestAlarmRevertsWithoutTick: under Run, one alarm makes the controller
// judge and revert at once; the tick (an hour here) is not waited for.
func TestAlarmRevertsWithoutTick(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	r.c.Close()

	alarm := make(chan struct{}, 1)
	var watchMu sync.Mutex
	var watched []map[string][]string
	opts := Options{Tick: time.Hour, NoSync: true, Cells: testCells()}
	h := r.hooks()
	h.Alarm = alarm
	h.Watch = func(w map[string][]string) { watchMu.Lock(); watched = append(watched, w); watchMu.Unlock() }
	c, err := Open(r.path, opts, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	watchMu.Lock()
	if len(watched) != 1 || !slices.Equal(watched[0]["canary-1"], []string{"stable-a", "stable-b"}) {
		t.Fatalf("watched on resume: %v, want canary-1 against stable-a, stable-b", watched)
	}
	watchMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Run(ctx)
	r.judge.set(StateFailing, 3)
	alarm <- struct{}{}
	testwait.For(t, 10*time.Second, "revert after an alarm", func() bool {
		v, err := c.Rollout(id)
		return err == nil && v.Status == StatusRolledBack
	})
	watchMu.Lock()
	defer watchMu.Unlock()
	if last := watched[len(watched)-1]; len(last) != 0 {
		t.Fatalf("still watching %v after the revert", last)
	}
}
