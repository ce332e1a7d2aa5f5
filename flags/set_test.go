package flags

import (
	"fmt"
	"math"
	"testing"

	"github.com/cellgate/cellgate/balancer"
)

const testSeed = 0x63656c6c67617465

// keyHashes are the cell table's hashes of n sticky keys "user-i".
func keyHashes(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = balancer.HashKey(testSeed, []byte(fmt.Sprint("user-", i)))
	}
	return out
}

func def(name string, w ...float64) Def {
	d := Def{Name: name}
	for i, x := range w {
		d.Variants = append(d.Variants, fmt.Sprint("v", i))
		d.Weights = append(d.Weights, x)
	}
	d.Control = "v0"
	return d
}

func mustSet(t testing.TB, defs ...Def) *Set {
	t.Helper()
	s, err := NewSet(testSeed, defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestShares: each variant's share of 100 000 keys is its weight's share
// within ±1 percentage point.
func TestShares(t *testing.T) {
	keys := keyHashes(100_000)
	for _, c := range []struct {
		name string
		w    []float64
	}{
		{"half", []float64{1, 1}},
		{"one-percent", []float64{99, 1}},
		{"five-percent", []float64{95, 5}},
		{"three-way", []float64{50, 30, 20}},
		{"zero-variant", []float64{70, 0, 30}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustSet(t, def("f", c.w...))
			n := make([]int, len(c.w))
			for _, h := range keys {
				n[s.Pick(0, h)]++
			}
			total := 0.0
			for _, w := range c.w {
				total += w
			}
			for i, w := range c.w {
				got, want := 100*float64(n[i])/float64(len(keys)), 100*w/total
				if math.Abs(got-want) > 1 {
					t.Errorf("variant %d: %.2f %% of keys, want %.2f ± 1", i, got, want)
				}
			}
		})
	}
}

// TestMonotoneAndExactRevert ramps one variant 0 → 1 → 5 → 25 → 50 → 100
// of its flag by raising its weight alone: at each step a key either keeps
// its variant or moves into the ramped one; then the weights go back and
// every key has exactly its first variant again.
func TestMonotoneAndExactRevert(t *testing.T) {
	keys := keyHashes(100_000)
	e := NewEngine(testSeed, nil)
	d := Def{Name: "checkout", Variants: []string{"classic", "express", "oneclick"}, Weights: []float64{60, 40, 0}, Control: "classic"}
	if err := e.SetDefs([]Def{d}, nil); err != nil {
		t.Fatal(err)
	}
	first := make([]int, len(keys))
	for i, h := range keys {
		first[i] = e.Load().Pick(0, h)
	}
	prev := append([]int(nil), first...)
	for _, pct := range []float64{1, 5, 25, 50, 99} {
		// Share pct of the flag for "oneclick": its weight w solves
		// w / (100 + w) = pct / 100 while the others keep theirs.
		w := 100 * pct / (100 - pct)
		if err := e.SetWeights(map[string]float64{"checkout=oneclick": w}, false); err != nil {
			t.Fatal(err)
		}
		moved := 0
		for i, h := range keys {
			v := e.Load().Pick(0, h)
			if v != prev[i] {
				if v != 2 {
					t.Fatalf("at %v %%: key %d moved %d → %d, not into the ramped variant", pct, i, prev[i], v)
				}
				moved++
			}
			prev[i] = v
		}
		t.Logf("at %v %%: %d keys moved into oneclick", pct, moved)
	}
	if err := e.SetWeights(map[string]float64{"checkout=oneclick": 0}, false); err != nil {
		t.Fatal(err)
	}
	for i, h := range keys {
		if v := e.Load().Pick(0, h); v != first[i] {
			t.Fatalf("after the revert key %d is on %d, had %d", i, v, first[i])
		}
	}
}

// chiSquare2 is Pearson's statistic for independence of two categorical
// variables given as parallel slices.
func chiSquare2(a, b []int, na, nb int) (stat float64, df int) {
	obs := make([]float64, na*nb)
	ra, rb := make([]float64, na), make([]float64, nb)
	for i := range a {
		obs[a[i]*nb+b[i]]++
		ra[a[i]]++
		rb[b[i]]++
	}
	n := float64(len(a))
	for i := range na {
		for j := range nb {
			exp := ra[i] * rb[j] / n
			if exp > 0 {
				d := obs[i*nb+j] - exp
				stat += d * d / exp
			}
		}
	}
	return stat, (na - 1) * (nb - 1)
}

// chi2Crit999 are the 0.999 quantiles of χ² by degrees of freedom: a test
// of truly independent assignments fails 1 run in 1000 per table.
var chi2Crit999 = map[int]float64{1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 6: 22.46, 8: 26.12}

// TestIndependentOfCellAndOtherFlags: over 100 000 keys the variant of a
// flag is independent (χ², p = 0.001) of the key's cell in a 3-cell table
// and of the variant of another flag with the very same variant names and
// weights (the salt is what keeps them apart).
func TestIndependentOfCellAndOtherFlags(t *testing.T) {
	keys := keyHashes(100_000)
	cells := balancer.NewTable(testSeed, []balancer.Cell{{Name: "stable-a", Weight: 100}, {Name: "stable-b", Weight: 100}, {Name: "canary", Weight: 10}})
	s := mustSet(t, def("new-ranker", 50, 50), def("checkout", 50, 50), def("search", 80, 15, 5))
	cell, f0, f1, f2 := make([]int, len(keys)), make([]int, len(keys)), make([]int, len(keys)), make([]int, len(keys))
	for i, h := range keys {
		cell[i], f0[i], f1[i], f2[i] = cells.Pick(h), s.Pick(0, h), s.Pick(1, h), s.Pick(2, h)
	}
	for _, c := range []struct {
		name   string
		a, b   []int
		na, nb int
	}{
		{"new-ranker vs cell", f0, cell, 2, 3},
		{"search vs cell", f2, cell, 3, 3},
		{"new-ranker vs checkout", f0, f1, 2, 2},
		{"checkout vs search", f1, f2, 2, 3},
	} {
		stat, df := chiSquare2(c.a, c.b, c.na, c.nb)
		t.Logf("%s: χ² = %.2f, df %d (critical %.2f)", c.name, stat, df, chi2Crit999[df])
		if stat > chi2Crit999[df] {
			t.Errorf("%s: χ² = %.2f > %.2f: not independent", c.name, stat, chi2Crit999[df])
		}
	}
}

// TestHeader: the dictionary lists every flag in config order, and a flag
// whose variants all weigh 0 is left out.
func TestHeader(t *testing.T) {
	s := mustSet(t,
		Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{0, 1}, Control: "off", Boolean: true},
		Def{Name: "dead", Variants: []string{"a", "b"}, Weights: []float64{0, 0}, Control: "a"},
		Def{Name: "checkout", Variants: []string{"classic", "express"}, Weights: []float64{1, 0}, Control: "classic"})
	var c Choices
	s.Assign(42, 0, true, &c)
	if got := string(s.AppendHeader(nil, &c)); got != "new-ranker=on, checkout=classic" {
		t.Errorf("header %q", got)
	}
}

func TestAssignAllocs(t *testing.T) {
	s := mustSet(t, eightFlags()...)
	var c Choices
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(1000, func() {
		s.Assign(12345, 0, true, &c)
		buf = s.AppendHeader(buf[:0], &c)
	}); n != 0 {
		t.Errorf("Assign+AppendHeader allocate %v times per request", n)
	}
}

func eightFlags() []Def {
	var defs []Def
	for i := range 8 {
		d := def(fmt.Sprint("flag-", i), 90, 10)
		if i%2 == 1 {
			d = def(fmt.Sprint("flag-", i), 50, 30, 20)
		}
		defs = append(defs, d)
	}
	return defs
}

// BenchmarkAssign is the request path's flag cost: assign 1 or 8 flags and
// write the header value.
func BenchmarkAssign(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprint(n, "flags"), func(b *testing.B) {
			s := mustSet(b, eightFlags()[:n]...)
			var c Choices
			buf := make([]byte, 0, 512)
			keys := keyHashes(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s.Assign(keys[i&1023], 0, true, &c)
				buf = s.AppendHeader(buf[:0], &c)
			}
		})
	}
}
