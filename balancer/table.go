package balancer

import (
	"math"
	"math/bits"
)

// Cell is one routing target and its weight. Weights are relative: a cell's
// share of keys is its weight over the sum of all weights. Zero means the cell
// receives no keys; negative weights are treated as zero.
type Cell struct {
	Name   string
	Weight float64
}

// entry is a cell with the values a pick needs precomputed.
type entry struct {
	index int     // position in Table.cells
	hash  uint64  // hashName(seed, name)
	mul   uint64  // second per-cell constant for cellHash
	invW  float64 // 1/weight
	lbMul float64 // invW·2⁻⁵³·(1−1e-8): scales lowerBound's integer form
}

// Table is an immutable routing snapshot. Build a new one for every change;
// never edit one that has been published.
type Table struct {
	seed    uint64
	cells   []Cell
	entries []entry // active cells only, in config order
	total   float64
}

// NewTable builds a table over cells with the given seed. The slice is
// copied, so the caller may reuse it.
func NewTable(seed uint64, cells []Cell) *Table {
	t := &Table{
		seed:  seed,
		cells: append([]Cell(nil), cells...),
	}
	for i, c := range t.cells {
		e := entry{index: i, hash: hashName(seed, c.Name)}
		e.mul = mix64(e.hash) | 1
		if c.Weight > 0 && !math.IsInf(c.Weight, 0) && !math.IsNaN(c.Weight) {
			e.invW = 1 / c.Weight
			e.lbMul = e.invW * (1.0 / (1 << 53)) * (1 - 1e-8)
			t.total += c.Weight
			t.entries = append(t.entries, e)
		} else {
			t.cells[i].Weight = 0
		}
	}
	return t
}

// WithWeights returns a new table with the same cells (same order, same seed)
// and the weights in w applied; cells not named in w keep their weight.
func (t *Table) WithWeights(w map[string]float64) *Table {
	cells := append([]Cell(nil), t.cells...)
	for i := range cells {
		if v, ok := w[cells[i].Name]; ok {
			cells[i].Weight = v
		}
	}
	return NewTable(t.seed, cells)
}

// Len is the number of cells, including those with weight zero.
func (t *Table) Len() int { return len(t.cells) }

// Cell returns the i-th cell as configured (weight clamped to ≥ 0).
func (t *Table) Cell(i int) Cell { return t.cells[i] }

// Index returns the position of the named cell, or -1.
func (t *Table) Index(name string) int {
	for i := range t.cells {
		if t.cells[i].Name == name {
			return i
		}
	}
	return -1
}

// TotalWeight is the sum of all positive weights.
func (t *Table) TotalWeight() float64 { return t.total }

// Hash returns the seeded hash of a sticky key for use with Pick.
func (t *Table) Hash(key []byte) uint64 { return HashKey(t.seed, key) }

// Pick returns the index of the cell that owns keyHash: the active cell with
// the smallest −ln(u)/w, which is the largest weighted rendezvous score
// −w/ln(u); ties go to the lower index. It returns -1 when no cell has a
// positive weight. Pick does not allocate and is safe for concurrent use.
//
// The logarithm is the expensive part, so Pick brackets it. With x = 1−u,
// x ≤ −ln(u) ≤ x/u. The first pass computes every cell's lower bound x/w
// (one conversion and one multiply; cells are independent, so the CPU
// overlaps them) and notes the cell with the smallest. That cell's upper
// bound x/(u·w) exceeds its lower bound by the factor 1/u, a few percent for
// the cells that win; any other cell whose lower bound is above it cannot
// win. Usually even the runner-up's bound is above it, and Pick returns
// after one pass without a single logarithm; otherwise it compares exact costs of the few that are. TestPruneKeepsWinner
// checks the result against the plain one-pass definition.
func (t *Table) Pick(keyHash uint64) int {
	entries := t.entries
	if len(entries) == 0 {
		return -1
	}
	if len(entries) > slotMask {
		return t.pickExact(keyHash)
	}
	// Bounds are positive floats, whose bit patterns order like the
	// numbers. Rounding a bound down to clear its low bits keeps it a lower
	// bound and frees room for the slot number, so min and runner-up are
	// tracked with integer min/max (conditional moves): a compare-and-branch
	// here is mispredicted a few times per pick, which costs more than the
	// arithmetic.
	first, second := uint64(math.MaxUint64), uint64(math.MaxUint64)
	for i := range entries {
		e := &entries[i]
		b := math.Float64bits(lowerBound(cellHash(keyHash, e))*e.lbMul)&^slotMask | uint64(i)
		second = min(second, max(first, b))
		first = min(first, b)
	}
	fe := &entries[first&slotMask]
	fh := cellHash(keyHash, fe)
	if math.Float64frombits(second&^slotMask) > upperBound(fh)*fe.invW {
		return fe.index // the common case: no other cell can reach it
	}
	return t.pickExact(keyHash)
}

// slotMask is the bits of a packed bound that hold the slot number.
const slotMask = 1<<8 - 1

// pickExact is Pick by the definition, skipping the logarithm only for cells
// whose lower bound already loses. Pick falls back to it when bounds overlap
// (a few percent of keys) and for tables of more than 255 active cells.
func (t *Table) pickExact(keyHash uint64) int {
	best, bestCost := -1, math.Inf(1)
	for i := range t.entries {
		e := &t.entries[i]
		h := cellHash(keyHash, e)
		if lowerBound(h)*e.lbMul > bestCost {
			continue
		}
		if c := cost(h) * e.invW; c < bestCost {
			best, bestCost = e.index, c
		}
	}
	return best
}

// cellHash is the per-(key, cell) uniform value: a 64×64→128-bit multiply
// folded hi^lo (wyhash's "mum"), one instruction where mix64 takes two
// multiplies and four shifts. keyHash is already well mixed, and each cell
// brings two independent constants, so values for the same key are
// independent across cells.
func cellHash(keyHash uint64, e *entry) uint64 {
	hi, lo := bits.Mul64(keyHash^e.hash, e.mul)
	return hi ^ lo
}

// PickKey hashes key and picks its cell.
func (t *Table) PickKey(key []byte) int { return t.Pick(t.Hash(key)) }
