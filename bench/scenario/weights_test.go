package scenario

import (
	"context"
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	tl := timeline{
		{at: 1, weights: map[string]float64{"a": 100, "b": 100, "c": 0}},
		{at: 5, weights: map[string]float64{"a": 99, "b": 99, "c": 2}},
		{before: 8, at: 9, weights: map[string]float64{"a": 100, "b": 100, "c": 0}},
		{at: 12, weights: map[string]float64{"a": 0, "b": 0, "c": 200}},
	}
	if c, ok := tl.canaryZeroAfter(2, "c"); !ok || c.before != 8 || c.at != 9 {
		t.Errorf("revert %+v %v, want the change at 9", c, ok)
	}
	if _, ok := tl.canaryZeroAfter(9, "c"); ok {
		t.Error("a revert after 9")
	}
	if c, ok := tl.allZero([]string{"a", "b"}); !ok || c.at != 12 {
		t.Errorf("promotion %+v %v, want at 12", c, ok)
	}
}

// TestWatchWeights records each change once, with a window that brackets
// the read that first saw it.
func TestWatchWeights(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reads := 0
	read := func() map[string]float64 {
		reads++
		switch {
		case reads >= 6:
			cancel()
			return map[string]float64{"c": 0}
		case reads >= 3:
			return map[string]float64{"c": 5}
		}
		return map[string]float64{"c": 0}
	}
	got := watchWeights(ctx, time.Now(), read)
	if len(got) != 3 || got[1].weights["c"] != 5 || got[2].weights["c"] != 0 {
		t.Fatalf("changes %+v", got)
	}
	for _, c := range got[1:] {
		if c.before >= c.at {
			t.Errorf("change window (%v, %v] is empty", c.before, c.at)
		}
	}
}
