package rollout

import (
	"testing"
)

func TestStepWeights(t *testing.T) {
	w0 := Weights{"t1": 0, "t2": 0, "b1": 30, "b2": 10, "g1": 0, "g2": 0, "bl1": 60, "bl2": 20}
	tests := []struct {
		name string
		plan Plan
		pct  float64
		want Weights
	}{
		{"canary 0 is w0", Plan{Targets: []string{"t1"}, Baseline: []string{"b1", "b2"}}, 0, Weights{"t1": 0, "b1": 30, "b2": 10}},
		{"canary 25 split by w0", Plan{Targets: []string{"t1"}, Baseline: []string{"b1", "b2"}}, 25, Weights{"t1": 10, "b1": 22.5, "b2": 7.5}},
		{"canary two targets equal", Plan{Targets: []string{"t1", "t2"}, Baseline: []string{"b1", "b2"}}, 50, Weights{"t1": 10, "t2": 10, "b1": 15, "b2": 5}},
		{"canary 100", Plan{Targets: []string{"t1"}, Baseline: []string{"b1"}}, 100, Weights{"t1": 30, "b1": 0}},
		{"canary zero baseline splits equally", Plan{Targets: []string{"b1"}, Baseline: []string{"t1", "t2"}}, 50, Weights{"b1": 15, "t1": 7.5, "t2": 7.5}},
		{"rolling 50 of 2 pairs", Plan{Strategy: StrategyRolling, Targets: []string{"g1", "g2"}, Baseline: []string{"bl1", "bl2"}}, 50, Weights{"g1": 60, "bl1": 0, "g2": 0, "bl2": 20}},
		{"rolling 1 rounds up to a pair", Plan{Strategy: StrategyRolling, Targets: []string{"g1", "g2"}, Baseline: []string{"bl1", "bl2"}}, 1, Weights{"g1": 60, "bl1": 0, "g2": 0, "bl2": 20}},
		{"rolling 100", Plan{Strategy: StrategyRolling, Targets: []string{"g1", "g2"}, Baseline: []string{"bl1", "bl2"}}, 100, Weights{"g1": 60, "bl1": 0, "g2": 20, "bl2": 0}},
		{"bluegreen 5 per pair", Plan{Strategy: StrategyBlueGreen, Targets: []string{"g1", "g2"}, Baseline: []string{"bl1", "bl2"}}, 5, Weights{"g1": 3, "bl1": 57, "g2": 1, "bl2": 19}},
		{"bluegreen 100", Plan{Strategy: StrategyBlueGreen, Targets: []string{"g1"}, Baseline: []string{"bl1"}}, 100, Weights{"g1": 60, "bl1": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := stepWeights(&tc.plan, w0, tc.pct)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			assertWeights(t, got, tc.want)
		})
	}
}

func TestPairsSwitched(t *testing.T) {
	for _, tc := range []struct {
		pct  float64
		n    int
		want int
	}{{25, 4, 1}, {50, 4, 2}, {100, 4, 4}, {1, 4, 1}, {50, 3, 2}, {33.333333333, 3, 1}, {100, 1, 1}} {
		if got := pairsSwitched(tc.pct, tc.n); got != tc.want {
			t.Errorf("pairsSwitched(%g, %d) = %d, want %d", tc.pct, tc.n, got, tc.want)
		}
	}
}

func TestRampToward(t *testing.T) {
	cur := Weights{"c": 0, "a": 100}
	goal := Weights{"c": 50, "a": 50}
	w, done := rampToward(cur, goal, 25)
	if done || !near(w["c"], 25) || !near(w["a"], 75) {
		t.Fatalf("first tick: %v %v", w, done)
	}
	w, done = rampToward(w, goal, 25)
	if !done || !sameWeights(w, goal) {
		t.Fatalf("second tick: %v %v", w, done)
	}
	if w, done := rampToward(cur, goal, 0); !done || !sameWeights(w, goal) {
		t.Fatal("no cap must jump")
	}
}
