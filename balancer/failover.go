package balancer

import "math"

// CellSet is a set of cell positions (Table.Cell indices), a fixed bitmask
// so the request path can build one on the stack. Positions ≥ MaxSetCells
// are never members: failover considers at most that many cells.
type CellSet [MaxSetCells / 64]uint64

// MaxSetCells bounds the positions a CellSet holds; it matches the slot
// width Pick packs into its bounds.
const MaxSetCells = 256

// Add puts position i in the set (ignored when i is out of range).
func (s *CellSet) Add(i int) {
	if i >= 0 && i < MaxSetCells {
		s[i>>6] |= 1 << (uint(i) & 63)
	}
}

// Has reports whether position i is in the set.
func (s *CellSet) Has(i int) bool {
	return i >= 0 && i < MaxSetCells && s[i>>6]&(1<<(uint(i)&63)) != 0
}

// Empty reports whether the set has no member.
func (s *CellSet) Empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// PickExcept is Pick restricted to the active cells not in skip: the key's
// next choice in its own weighted rendezvous order once the cells in skip
// are taken out. It returns -1 when every active cell is skipped.
//
// This is what cell failover needs. A key's order over cells is fixed by
// its hash, so skipping a down cell moves only the keys whose first choice
// it was, and each of them to its second choice; with exponential races
// (cost/w) the second choice of the keys that lost their first is
// distributed over the remaining cells in proportion to their weights. When
// the cell is back, Pick returns it again for exactly those keys.
// TestFailoverMovesOnlyDownKeys and TestFailoverProportional check both.
//
// It computes exact costs for every candidate (no bounds): it runs only for
// keys whose cell is down, and it does not allocate.
func (t *Table) PickExcept(keyHash uint64, skip *CellSet) int {
	best, bestCost := -1, math.Inf(1)
	for i := range t.entries {
		e := &t.entries[i]
		if skip.Has(e.index) {
			continue
		}
		if c := cost(cellHash(keyHash, e)) * e.invW; c < bestCost {
			best, bestCost = e.index, c
		}
	}
	return best
}

// WeightOf sums the weights of the cells in s (for the failover panic
// threshold: the share of weight that is down).
func (t *Table) WeightOf(s *CellSet) float64 {
	sum := 0.0
	for i := range t.entries {
		if e := &t.entries[i]; s.Has(e.index) {
			sum += t.cells[e.index].Weight
		}
	}
	return sum
}
