package slo

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestDecisiveTest(t *testing.T) {
	const alpha = 0.0025
	tests := []struct {
		name            string
		xc, nc, xb, nb  uint64
		floor           float64
		wantSignificant bool
	}{
		{"3 of 4 against 0.1 % of 3000", 3, 4, 3, 3000, 0, true},
		{"2 of 2 against none of 3000", 2, 2, 0, 3000, 0, true},
		{"1 of 1 is not enough", 1, 1, 3, 3000, 0, false},
		{"5 of 100 against 4 % is noise", 5, 100, 120, 3000, 0, false},
		{"double the baseline is the null's edge", 200, 10000, 3000, 300000, 0, false},
		{"10 % of 300 against 0.1 %", 30, 300, 30, 30000, 0, true},
		{"no canary data", 0, 0, 3, 3000, 0, false},
		{"no baseline data", 3, 3, 0, 0, 0, false},
		{"a canary better than baseline", 0, 500, 30, 3000, 0, false},
		{"slow share 1.5 % under the 1 % floor", 15, 1000, 0, 30000, latencyTailShare, false},
		{"slow share 1.5 % without the floor", 15, 1000, 0, 30000, 0, true},
		{"slow share 40 % over the floor", 8, 20, 150, 30000, latencyTailShare, true},
	}
	for _, tc := range tests {
		r := decisiveTest("t", tc.xc, tc.nc, tc.xb, tc.nb, 2, tc.floor, alpha)
		if r.Significant != tc.wantSignificant {
			t.Errorf("%s: significant %v (log e %.2f, threshold %.2f), want %v", tc.name, r.Significant, r.LogLR, r.LogThreshold, tc.wantSignificant)
		}
	}
}

// TestSteadyTest: the steady arm against the baseline's counts before the
// step (the newer half is fitted by the null, the older half only informs
// the numerator), at the level it has by default on one node (α/2).
func TestSteadyTest(t *testing.T) {
	const alpha = 0.005
	pre := func(x0, n0, x1, n1 uint64) preStep {
		return preStep{recent: counts{Requests: n0, AvailBad: x0}, older: counts{Requests: n1, AvailBad: x1}}
	}
	tests := []struct {
		name   string
		xc, nc uint64
		pre    preStep
		want   bool
	}{
		{"2 of 12 against 0.1 % of 9000 twice", 2, 12, pre(9, 9000, 9, 9000), true},
		{"3 of 20 against 0.1 %", 3, 20, pre(9, 9000, 9, 9000), true},
		{"2 of 12 without the older half pays for learning the baseline", 2, 12, pre(9, 9000, 0, 0), false},
		{"1 of 1 against none of 1700: decisive e-value, but one error is an anecdote", 1, 1, pre(0, 1700, 0, 0), false},
		{"2 of 2 against none of 1700", 2, 2, pre(0, 1700, 0, 0), true},
		{"5 of 100 against 4 % is noise", 5, 100, pre(360, 9000, 360, 9000), false},
		{"no pre-step data", 3, 3, pre(0, 0, 0, 0), false},
	}
	for _, tc := range tests {
		r := steadyTest("t", tc.xc, tc.nc, tc.pre, 2, alpha, minDecisiveBad)
		if r.Significant != tc.want {
			t.Errorf("%s: significant %v (log e %.2f, threshold %.2f), want %v", tc.name, r.Significant, r.LogLR, r.LogThreshold, tc.want)
		}
	}
}

// TestDecisiveTestLevel: on the null's boundary (the canary at exactly
// twice the baseline's ratio), looking after every request, the test may
// ever reject in at most alpha of the runs (Ville's inequality; the
// universal-inference e-value is conservative, so far fewer).
func TestDecisiveTestLevel(t *testing.T) {
	const (
		alpha = 0.05
		runs  = 400
		looks = 500
		pb    = 0.01
	)
	if raceEnabled {
		t.Skip("a numeric check; nothing concurrent")
	}
	rng := rand.New(rand.NewPCG(16, 16))
	rejected := 0
	for range runs {
		var xc, nc, xb, nb uint64
		for range looks {
			nc++
			if rng.Float64() < 2*pb {
				xc++
			}
			for range 10 {
				nb++
				if rng.Float64() < pb {
					xb++
				}
			}
			if decisiveTest("t", xc, nc, xb, nb, 2, 0, alpha).Significant {
				rejected++
				break
			}
		}
	}
	t.Logf("%d of %d null runs ever rejected at alpha %g over %d looks", rejected, runs, alpha, looks)
	if float64(rejected) > alpha*runs {
		t.Fatalf("%d of %d null runs rejected, above alpha %g", rejected, runs, alpha)
	}
}

// TestFleetSizeSplitsAlpha: the levels of the tests that can revert or
// degrade add up to Alpha / fleet size (half to the decisive error test's
// steady arm, the rest evenly to the four others without a TTFB SLO), so
// N nodes looking at once falsely revert a step with probability at most
// Alpha; the verdict's tests carry those levels.
func TestFleetSizeSplitsAlpha(t *testing.T) {
	now := simEpoch
	cfg := simConfig()
	reg := NewRegistry(cfg, func() time.Time { return now })
	reg.Cell("canary").RecordAt(now, 500, false, time.Millisecond, 0)
	reg.Cell("base").RecordAt(now, 200, false, time.Millisecond, 0)
	for _, n := range []int{1, 5} {
		reg.SetFleetSize(n)
		lv := reg.levels(&cfg)
		sum := lv.errorSteady + lv.errorMatched + lv.latencyDecisive + lv.errorRatio + lv.rank
		if want := 0.01 / float64(n); math.Abs(sum-want) > 1e-12 {
			t.Errorf("fleet of %d: levels add up to %g, want Alpha/%d = %g", n, sum, n, want)
		}
		v := reg.Judge([]string{"canary"}, []string{"base"}, now, nil)
		want := map[string]float64{
			testErrorSteady:  math.Log(float64(2*n) / 0.01),
			testErrorMatched: math.Log(float64(8*n) / 0.01),
			testBaselineMove: math.Log(1 / shiftAlpha),
		}
		for _, tr := range v.Tests {
			if w, ok := want[tr.Name]; ok {
				if math.Abs(tr.LogThreshold-w) > 1e-9 {
					t.Errorf("fleet of %d: %s log threshold %.4f, want %.4f", n, tr.Name, tr.LogThreshold, w)
				}
				delete(want, tr.Name)
			}
		}
		if len(want) > 0 {
			t.Errorf("fleet of %d: verdict lacks tests %v: %+v", n, want, v.Tests)
		}
	}
}
