package balancer

import (
	"fmt"
	"math"
	"strconv"
	"testing"
)

const testSeed = 0x5eed

// keys returns n distinct sticky keys.
func keys(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte("user-" + strconv.Itoa(i))
	}
	return out
}

// assign maps every key to a cell index under t.
func assign(t *Table, ks [][]byte) []int {
	out := make([]int, len(ks))
	for i, k := range ks {
		out[i] = t.PickKey(k)
	}
	return out
}

func cellsOf(ws ...float64) []Cell {
	cs := make([]Cell, len(ws))
	for i, w := range ws {
		cs[i] = Cell{Name: fmt.Sprintf("cell-%d", i), Weight: w}
	}
	return cs
}

// TestShareMatchesWeight is property (a): each cell's share of 100k keys is
// within one percentage point of its weight's share.
func TestShareMatchesWeight(t *testing.T) {
	ks := keys(100_000)
	for _, tc := range []struct {
		name string
		ws   []float64
	}{
		{"two equal", []float64{100, 100}},
		{"canary 1%", []float64{99, 99, 2}},
		{"canary 5%", []float64{95, 95, 10}},
		{"skewed", []float64{1, 2, 3, 4, 90}},
		{"sixteen", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"fractional", []float64{0.25, 0.5, 0.25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable(testSeed, cellsOf(tc.ws...))
			counts := make([]int, tab.Len())
			for _, c := range assign(tab, ks) {
				counts[c]++
			}
			for i, w := range tc.ws {
				want := w / tab.TotalWeight()
				got := float64(counts[i]) / float64(len(ks))
				if math.Abs(got-want) > 0.01 {
					t.Errorf("cell %d: share %.4f, want %.4f ± 0.01", i, got, want)
				}
			}
		})
	}
}

// TestStable is property (b): the same key maps to the same cell in tables
// built independently from the same config (as after a restart), and the
// mapping does not depend on the order cells are listed in.
func TestStable(t *testing.T) {
	ks := keys(20_000)
	a := assign(NewTable(testSeed, cellsOf(10, 20, 30)), ks)
	b := assign(NewTable(testSeed, cellsOf(10, 20, 30)), ks)
	rev := NewTable(testSeed, []Cell{{"cell-2", 30}, {"cell-1", 20}, {"cell-0", 10}})
	for i, k := range ks {
		if a[i] != b[i] {
			t.Fatalf("key %s: %d then %d", k, a[i], b[i])
		}
		if got := rev.Cell(rev.PickKey(k)).Name; got != fmt.Sprintf("cell-%d", a[i]) {
			t.Fatalf("key %s: reordered config moved it from cell-%d to %s", k, a[i], got)
		}
	}
	// A golden value pins the hash across releases: changing the hash
	// function would move every user of every running fleet.
	if got := NewTable(testSeed, cellsOf(1, 1, 1, 1)).PickKey([]byte("user-42")); got != goldenUser42 {
		t.Fatalf("user-42 → cell %d, golden %d: the key hash changed", got, goldenUser42)
	}
}

const goldenUser42 = 3

// TestRaiseMovesOnlyToRaised is property (c) and (d): raising one cell's
// weight moves keys only to that cell, and setting it back (or to 0) returns
// every key to exactly its previous cell.
func TestRaiseMovesOnlyToRaised(t *testing.T) {
	ks := keys(100_000)
	base := cellsOf(100, 100, 0)
	before := assign(NewTable(testSeed, base), ks)
	prev := before
	for _, w := range []float64{1, 5, 25, 50, 100, 400} {
		cs := cellsOf(100, 100, w)
		now := assign(NewTable(testSeed, cs), ks)
		for i := range ks {
			if now[i] != prev[i] && now[i] != 2 {
				t.Fatalf("canary %v: key %d moved %d → %d, not to the raised cell", w, i, prev[i], now[i])
			}
		}
		prev = now
	}
	// Back to 0: every key is where it was before the ramp.
	after := assign(NewTable(testSeed, base), ks)
	for i := range ks {
		if after[i] != before[i] {
			t.Fatalf("rollback: key %d on %d, was %d", i, after[i], before[i])
		}
	}
}

// TestZeroWeightGetsNothing is property (e).
func TestZeroWeightGetsNothing(t *testing.T) {
	tab := NewTable(testSeed, cellsOf(0, 3, 0, 1, -5, math.NaN()))
	for i, c := range assign(tab, keys(50_000)) {
		if c != 1 && c != 3 {
			t.Fatalf("key %d on cell %d with weight %v", i, c, tab.Cell(c).Weight)
		}
	}
	if got := NewTable(testSeed, cellsOf(0, 0)).PickKey([]byte("k")); got != -1 {
		t.Fatalf("all-zero table picked %d, want -1", got)
	}
	if got := NewTable(testSeed, nil).PickKey([]byte("k")); got != -1 {
		t.Fatalf("empty table picked %d, want -1", got)
	}
}

func TestWithWeights(t *testing.T) {
	tab := NewTable(testSeed, cellsOf(1, 2, 3))
	next := tab.WithWeights(map[string]float64{"cell-1": 7, "nope": 9})
	if got := []float64{next.Cell(0).Weight, next.Cell(1).Weight, next.Cell(2).Weight}; got[0] != 1 || got[1] != 7 || got[2] != 3 {
		t.Fatalf("weights %v", got)
	}
	if tab.Cell(1).Weight != 2 {
		t.Fatal("WithWeights edited the published table")
	}
	if next.Index("cell-2") != 2 || next.Index("x") != -1 {
		t.Fatal("Index")
	}
}

// TestSeedMatters: a different seed gives a different, still balanced map.
func TestSeedMatters(t *testing.T) {
	ks := keys(10_000)
	a := assign(NewTable(1, cellsOf(1, 1)), ks)
	b := assign(NewTable(2, cellsOf(1, 1)), ks)
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same > 5_500 || same < 4_500 {
		t.Fatalf("%d of 10000 keys kept their cell across seeds; want about half", same)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 128} {
		ws := make([]float64, n)
		for i := range ws {
			ws[i] = float64(1 + i%7)
		}
		tab := NewTable(testSeed, cellsOf(ws...))
		key := []byte("user-1234567")
		b.Run(fmt.Sprintf("cells=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			h := tab.Hash(key)
			sink := 0
			for i := 0; b.Loop(); i++ {
				sink += tab.Pick(h + uint64(i))
			}
			_ = sink
		})
	}
}

func BenchmarkHashKey(b *testing.B) {
	key := []byte("8c4f1e7a-5b2d-4f0e-9a6b-0d3c2e1f4a5b")
	b.ReportAllocs()
	for b.Loop() {
		_ = HashKey(testSeed, key)
	}
}

// TestCostAccuracy checks the hand-rolled −ln against math.Log over random
// and extreme inputs.
func TestCostAccuracy(t *testing.T) {
	worst := 0.0
	check := func(h uint64) {
		want := -math.Log(unitInterval(h))
		got := cost(h)
		if d := math.Abs(got-want) / math.Max(want, 1e-300); d > worst {
			worst = d
		}
		if math.Abs(got-want) > 4e-9*math.Max(1, want) {
			t.Fatalf("cost(%#x) = %.17g, math.Log gives %.17g", h, got, want)
		}
	}
	for i := uint64(0); i < 1_000_000; i++ {
		check(mix64(i))
	}
	for _, h := range []uint64{0, 1, 1 << 11, 1<<63 - 1, 1 << 63, ^uint64(0), ^uint64(0) - 1<<11} {
		check(h)
	}
	t.Logf("worst relative error %.3g", worst)
}

// TestPruneKeepsWinner compares Pick with an unpruned reference pick over
// many keys and weight sets, including keys whose u is close to 1.
func TestPruneKeepsWinner(t *testing.T) {
	ref := func(tab *Table, h uint64) int {
		best, bestCost := -1, math.Inf(1)
		for _, e := range tab.entries {
			if c := cost(cellHash(h, &e)) * e.invW; c < bestCost {
				best, bestCost = e.index, c
			}
		}
		return best
	}
	for _, ws := range [][]float64{{1, 1}, {100, 100, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1e-6, 1e6, 1}, manyCells(40), manyCells(260)} {
		tab := NewTable(testSeed, cellsOf(ws...))
		for i := uint64(0); i < 200_000; i++ {
			h := mix64(i)
			if got, want := tab.Pick(h), ref(tab, h); got != want {
				t.Fatalf("weights %v hash %#x: pruned pick %d, reference %d", ws, h, got, want)
			}
		}
	}
}

func TestLowerBound(t *testing.T) {
	for i := uint64(0); i < 1_000_000; i++ {
		h := mix64(i)
		if lb, c := lowerBound(h)*(1.0/(1<<53))*(1-1e-8), cost(h); lb > c {
			t.Fatalf("lowerBound(%#x) = %g > cost %g", h, lb, c)
		}
		if ub, c := upperBound(h), cost(h); ub < c {
			t.Fatalf("upperBound(%#x) = %g < cost %g", h, ub, c)
		}
	}
}

func manyCells(n int) []float64 {
	ws := make([]float64, n)
	for i := range ws {
		ws[i] = float64(1 + i%5)
	}
	return ws
}
