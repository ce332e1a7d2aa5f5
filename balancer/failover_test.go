package balancer

import (
	"math"
	"strconv"
	"testing"
)

// TestPickExceptEmptyIsPick: with nothing skipped, failover order's first
// choice is the key's own cell, for every key.
func TestPickExceptEmptyIsPick(t *testing.T) {
	tab := NewTable(testSeed, cellsOf(10, 20, 30, 0, 40))
	var none CellSet
	for i, k := range keys(50_000) {
		h := tab.Hash(k)
		if a, b := tab.Pick(h), tab.PickExcept(h, &none); a != b {
			t.Fatalf("key %d: Pick %d, PickExcept(∅) %d", i, a, b)
		}
	}
}

// TestFailoverMovesOnlyDownKeys: taking a cell out moves exactly the keys
// whose cell it was, none of them onto a skipped cell, and bringing it back
// returns exactly those keys (Pick is untouched by failover).
func TestFailoverMovesOnlyDownKeys(t *testing.T) {
	tab := NewTable(testSeed, cellsOf(30, 20, 50, 10))
	ks := keys(100_000)
	home := assign(tab, ks)
	for down := range tab.Len() {
		var skip CellSet
		skip.Add(down)
		moved := 0
		for i, k := range ks {
			got := failoverPick(tab, tab.Hash(k), &skip)
			switch {
			case home[i] != down && got != home[i]:
				t.Fatalf("cell %d down: key %d moved %d → %d though its cell is up", down, i, home[i], got)
			case home[i] == down && (got == down || got < 0):
				t.Fatalf("cell %d down: key %d stayed on %d", down, i, got)
			case home[i] == down:
				moved++
			}
		}
		if moved == 0 {
			t.Fatalf("cell %d down: no key moved", down)
		}
		// Back up: the table never changed, so every key is home again.
		for i, k := range ks {
			if got := tab.PickKey(k); got != home[i] {
				t.Fatalf("cell %d back: key %d on %d, want %d", down, i, got, home[i])
			}
		}
	}
}

// failoverPick is what the proxy does: Pick, and PickExcept only when the
// winner is skipped.
func failoverPick(tab *Table, h uint64, skip *CellSet) int {
	if i := tab.Pick(h); !skip.Has(i) {
		return i
	}
	return tab.PickExcept(h, skip)
}

// TestFailoverProportional: the down cell's keys spread over the up cells
// in proportion to their weights (within one percentage point), also with
// two cells down.
func TestFailoverProportional(t *testing.T) {
	ws := []float64{30, 20, 50, 10, 40}
	tab := NewTable(testSeed, cellsOf(ws...))
	ks := keys(200_000)
	for _, down := range [][]int{{2}, {0}, {1, 4}} {
		var skip CellSet
		for _, d := range down {
			skip.Add(d)
		}
		upW := tab.TotalWeight() - tab.WeightOf(&skip)
		counts := make([]int, tab.Len())
		n := 0
		for _, k := range ks {
			h := tab.Hash(k)
			if !skip.Has(tab.Pick(h)) {
				continue
			}
			counts[tab.PickExcept(h, &skip)]++
			n++
		}
		for i, w := range ws {
			if skip.Has(i) {
				if counts[i] != 0 {
					t.Errorf("down %v: %d keys failed over to down cell %d", down, counts[i], i)
				}
				continue
			}
			got, want := float64(counts[i])/float64(n), w/upW
			if math.Abs(got-want) > 0.01 {
				t.Errorf("down %v: cell %d got %.4f of the moved keys, want %.4f ± 0.01", down, i, got, want)
			}
		}
	}
}

// TestPickExceptAllSkipped: nothing left to choose is -1, and a zero-weight
// cell is never a failover target.
func TestPickExceptAllSkipped(t *testing.T) {
	tab := NewTable(testSeed, cellsOf(1, 0, 1))
	var skip CellSet
	skip.Add(0)
	for _, k := range keys(1000) {
		if got := tab.PickExcept(tab.Hash(k), &skip); got != 2 {
			t.Fatalf("got %d, want 2 (cell 1 has weight 0)", got)
		}
	}
	skip.Add(2)
	if got := tab.PickExcept(tab.Hash([]byte("x")), &skip); got != -1 {
		t.Fatalf("all skipped: got %d, want -1", got)
	}
}

func TestCellSet(t *testing.T) {
	var s CellSet
	if !s.Empty() {
		t.Fatal("zero set not empty")
	}
	for _, i := range []int{0, 63, 64, 255} {
		s.Add(i)
		if !s.Has(i) {
			t.Fatalf("Has(%d) false after Add", i)
		}
	}
	s.Add(256)
	s.Add(-1)
	if s.Has(256) || s.Has(-1) || s.Has(1) {
		t.Fatal("out-of-range or absent member reported")
	}
}

func BenchmarkPickExcept(b *testing.B) {
	for _, n := range []int{3, 16} {
		ws := make([]float64, n)
		for i := range ws {
			ws[i] = float64(i + 1)
		}
		tab := NewTable(testSeed, cellsOf(ws...))
		var skip CellSet
		skip.Add(0)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			h := uint64(1)
			for range b.N {
				h = mix64(h)
				_ = tab.PickExcept(h, &skip)
			}
		})
	}
}
