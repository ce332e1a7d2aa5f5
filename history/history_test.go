package history

import (
	"math"
	"testing"
)

// TestSamplerDeltasAndShares: a point holds the second's requests (the
// difference of lifetime counts), its error ratio and each cell's share of
// the second's requests; a cell's first reading has no requests.
func TestSamplerDeltasAndShares(t *testing.T) {
	s := &Sampler{Store: NewStore()}
	s.Sample(100, []CellReading{{Name: "a", Requests: 50, Weight: 90}, {Name: "b", Requests: 7, Weight: 10}})
	s.Sample(101, []CellReading{
		{Name: "a", Requests: 140, Errors: 0, P50: 2, P99: 9, Weight: 90},
		{Name: "b", Requests: 17, Errors: 5, P50: 3, P99: 40, Weight: 10},
	})
	got := s.Store.Since(0)
	want := map[string][]Point{
		"a": {{T: 100, Weight: 90, WeightShare: 0.9}, {T: 101, Requests: 90, P50: 2, P99: 9, Weight: 90, Share: 0.9, WeightShare: 0.9}},
		"b": {{T: 100, Weight: 10, WeightShare: 0.1}, {T: 101, Requests: 10, Errors: 5, ErrorRatio: 0.5, P50: 3, P99: 40, Weight: 10, Share: 0.1, WeightShare: 0.1}},
	}
	for cell, pts := range want {
		if len(got[cell]) != len(pts) {
			t.Fatalf("%s: %v, want %v", cell, got[cell], pts)
		}
		for i := range pts {
			if got[cell][i] != pts[i] {
				t.Errorf("%s[%d] = %+v, want %+v", cell, i, got[cell][i], pts[i])
			}
		}
	}
}

// TestSamplerSharesPerGroup: a flag's variant cohorts share the flag's
// requests and weights among themselves, apart from the cells (whose
// requests they also are) and from another flag's cohorts.
func TestSamplerSharesPerGroup(t *testing.T) {
	s := &Sampler{Store: NewStore()}
	read := func(cell, on, off, other uint64, onWeight float64) []CellReading {
		return []CellReading{
			{Name: "cell", Requests: cell, Weight: 100},
			{Name: "f=off", Requests: off, Weight: 100 - onWeight, Group: "f"},
			{Name: "f=on", Requests: on, Errors: on / 2, Weight: onWeight, Group: "f"},
			{Name: "g=x", Requests: other, Weight: 3, Group: "g"},
		}
	}
	s.Sample(100, read(0, 0, 0, 0, 0))
	s.Sample(101, read(100, 25, 75, 100, 20))
	got := s.Store.Since(101)
	want := map[string]Point{
		"cell":  {T: 101, Requests: 100, Weight: 100, Share: 1, WeightShare: 1},
		"f=on":  {T: 101, Requests: 25, Errors: 12, ErrorRatio: 0.48, Weight: 20, Share: 0.25, WeightShare: 0.2},
		"f=off": {T: 101, Requests: 75, Weight: 80, Share: 0.75, WeightShare: 0.8},
		"g=x":   {T: 101, Requests: 100, Weight: 3, Share: 1, WeightShare: 1},
	}
	for name, p := range want {
		if len(got[name]) != 1 || got[name][0] != p {
			t.Errorf("%s: %+v, want %+v", name, got[name], p)
		}
	}
}

// TestSamplerSkipsASecondSeenTwice: a late tick followed by a punctual one
// reads the same second twice; the second reading adds no point and its
// requests count in the next second's point.
func TestSamplerSkipsASecondSeenTwice(t *testing.T) {
	s := &Sampler{Store: NewStore()}
	s.Sample(100, []CellReading{{Name: "a", Requests: 10}})
	s.Sample(101, []CellReading{{Name: "a", Requests: 20}})
	s.Sample(101, []CellReading{{Name: "a", Requests: 25}})
	s.Sample(100, []CellReading{{Name: "a", Requests: 26}})
	s.Sample(102, []CellReading{{Name: "a", Requests: 30}})
	got := s.Store.Since(0)["a"]
	want := []Point{{T: 100}, {T: 101, Requests: 10, Share: 1}, {T: 102, Requests: 10, Share: 1}}
	if len(got) != len(want) {
		t.Fatalf("points %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestStoreKeepsTheLastHour: past Span points the oldest go; Since and
// Range cut by time.
func TestStoreKeepsTheLastHour(t *testing.T) {
	s := NewStore()
	for i := range int64(Span + 100) {
		s.Add("a", Point{T: i})
	}
	pts := s.Since(0)["a"]
	if len(pts) != Span || pts[0].T != 100 || pts[Span-1].T != Span+99 {
		t.Fatalf("%d points from %d to %d, want %d from 100", len(pts), pts[0].T, pts[len(pts)-1].T, Span)
	}
	if n := len(s.Since(Span + 90)["a"]); n != 10 {
		t.Errorf("Since: %d points, want 10", n)
	}
	if r := s.Range("a", 200, 210); len(r) != 10 || r[0].T != 200 || r[9].T != 209 {
		t.Errorf("Range(200, 210) = %v", r)
	}
}

// TestDownsample: buckets aligned to the step; counts summed, error ratio
// from the sums, p50 and share weighted by requests, p99 the highest,
// weight and weight share the last.
func TestDownsample(t *testing.T) {
	pts := []Point{
		{T: 9, Requests: 10, P50: 1, P99: 5, Weight: 1, Share: 0.1},
		{T: 10, Requests: 30, Errors: 3, P50: 2, P99: 8, Weight: 5, Share: 0.3},
		{T: 11, Requests: 10, Errors: 1, P50: 6, P99: 20, Weight: 25, Share: 0.5, WeightShare: 0.4},
		{T: 12, Requests: 0, Weight: 25, WeightShare: 0.25},
	}
	got := Downsample(pts, 10)
	if len(got) != 2 {
		t.Fatalf("%d buckets, want 2: %+v", len(got), got)
	}
	b := got[1]
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if b.T != 10 || b.Requests != 40 || b.Errors != 4 || !near(b.ErrorRatio, 0.1) || b.P99 != 20 ||
		b.Weight != 25 || b.WeightShare != 0.25 || !near(b.P50, 3) || !near(b.Share, 0.35) {
		t.Errorf("bucket at 10: %+v", b)
	}
	if got[0].T != 0 || got[0].Requests != 10 {
		t.Errorf("bucket at 0: %+v", got[0])
	}
}
