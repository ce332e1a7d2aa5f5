package scenario

import (
	"testing"
	"time"
)

func TestPhases(t *testing.T) {
	ms := int64(time.Millisecond)
	marks := []mark{
		{at: 300 * time.Millisecond, name: "fault", step: 2, percent: 50, takesInFlight: true},
		{at: 0, name: "baseline"},
		{at: 100 * time.Millisecond, name: "step 1 (10%)", step: 1, percent: 10},
		{at: 200 * time.Millisecond, name: "step 2 (50%)", step: 2, percent: 50},
	}
	all := []obs{
		{lo: 10 * ms, hi: 11 * ms, cell: cellA},
		{lo: 100 * ms, hi: 102 * ms, cell: cellA}, // due exactly at the step: the step's
		{lo: 150 * ms, hi: 154 * ms, cell: cellC},
		{lo: 199 * ms, hi: 260 * ms, cell: cellC, failed: true}, // by send time, not response time
		{lo: 250 * ms, hi: 251 * ms, cell: noCell, failed: true},
		{lo: 299 * ms, hi: 300 * ms, cell: cellC, failed: true}, // in flight at the onset: the fault's
		{lo: 350 * ms, hi: 351 * ms, cell: cellC, failed: true},
	}
	got := phases(marks, 400*time.Millisecond, all, cellC)
	want := []struct {
		name             string
		requests, failed int64
		share            float64
		start, end       time.Duration
		p99AtLeast       time.Duration
	}{
		{"baseline", 1, 0, 0, 0, 100 * time.Millisecond, time.Millisecond},
		{"step 1 (10%)", 3, 1, 200.0 / 3, 100 * time.Millisecond, 200 * time.Millisecond, 60 * time.Millisecond},
		{"step 2 (50%)", 1, 1, 0, 200 * time.Millisecond, 300 * time.Millisecond, time.Millisecond},
		{"fault", 2, 2, 100, 300 * time.Millisecond, 400 * time.Millisecond, time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("%d phases, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Requests != w.requests || g.Failed != w.failed || g.Start != w.start || g.End != w.end {
			t.Errorf("phase %d: %+v, want %+v", i, g, w)
		}
		if d := g.CanaryShare - w.share; d > 0.01 || d < -0.01 {
			t.Errorf("%s: canary share %.2f, want %.2f", g.Name, g.CanaryShare, w.share)
		}
		if g.P99 < w.p99AtLeast || g.P50 > g.P99 {
			t.Errorf("%s: p50 %v p99 %v, want p99 ≥ %v", g.Name, g.P50, g.P99, w.p99AtLeast)
		}
	}
}
