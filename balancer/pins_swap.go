package balancer

import "slices"

// shareEpsilon ignores share changes that are float rounding.
const shareEpsilon = 1e-12

// Swap builds the pin rules for table t, which replaces the table of prev
// (nil for the first table), and updates the rollout memory. The caller
// publishes t and the returned view together. revert forces the change to
// count as a revert (an operator's or controller's explicit rollback);
// otherwise Swap classifies it, see classify. Swap is safe for concurrent
// use but callers serialise table swaps anyway.
//
// Rules, per cell:
//   - weight 0: pins to it are void from now on (a pin never outlives its
//     cell's weight going to 0);
//   - share fell in a revert: pins to it are void from now on, and no new
//     pin may be made to it until its share rises again — so a revert moves
//     pinned sessions back on their next request;
//   - share rose in a promotion: keys moving into it from active sessions
//     get pinned to the cell they came from.
//
// A change of the cell list (names or order) forgets every pin: cell
// indices would no longer mean the same cells.
func (p *Pins) Swap(prev *PinView, t *Table, revert bool) *PinView {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now().UnixNano()
	n := t.Len()
	names := make([]string, n)
	for i := range n {
		names[i] = t.Cell(i).Name
	}
	if prev == nil || !slices.Equal(names, p.layout) {
		if prev != nil {
			p.reset()
		}
		p.layout = names
		p.rising = make([]bool, n)
		p.revoked = make([]bool, n)
		p.revokedAt = make([]int64, n)
		return p.viewLocked(t)
	}
	p.classifyLocked(prev.table, t, revert, now)
	return p.viewLocked(t)
}

// classifyLocked updates rising, revoked and revokedAt for the change from
// old to t.
//
// The balancer sees weights, not intent, and a promotion and a revert look
// alike: in both, some cells gain share and others lose it (the rollout
// controller keeps the total constant, so a canary step lowers the baseline
// as it raises the canary). What tells them apart is memory: a change in
// which a cell that rose in this rollout loses share undoes the rollout — a
// revert — and anything else is a promotion. A rollout ends when only the
// cells that rose still carry weight; the memory is then cleared, so the
// next rollout's first step, which lowers those cells, is a promotion.
func (p *Pins) classifyLocked(old, t *Table, revert bool, now int64) {
	up, down := shareChanges(old, t)
	for i := range down {
		if down[i] && p.rising[i] {
			revert = true
		}
	}
	for i := range up {
		w := t.Cell(i).Weight
		switch {
		case w <= 0:
			p.rising[i], p.revoked[i], p.revokedAt[i] = false, true, now
		case revert && down[i]:
			p.rising[i], p.revoked[i], p.revokedAt[i] = false, true, now
		case up[i]:
			p.revoked[i] = false
			if !revert {
				p.rising[i] = true
			}
		}
	}
	done, some := true, false
	for i := range p.rising {
		if t.Cell(i).Weight > 0 {
			some = some || p.rising[i]
			done = done && p.rising[i]
		}
	}
	if some && done {
		clear(p.rising)
	}
}

// shareChanges reports, per cell, whether its share of the total weight
// rose or fell from old to t.
func shareChanges(old, t *Table) (up, down []bool) {
	n := t.Len()
	up, down = make([]bool, n), make([]bool, n)
	for i := range n {
		var s0, s1 float64
		if old.TotalWeight() > 0 {
			s0 = old.Cell(i).Weight / old.TotalWeight()
		}
		if t.TotalWeight() > 0 {
			s1 = t.Cell(i).Weight / t.TotalWeight()
		}
		up[i] = s1 > s0+shareEpsilon
		down[i] = s1 < s0-shareEpsilon
	}
	return up, down
}

// viewLocked snapshots the rules for t.
func (p *Pins) viewLocked(t *Table) *PinView {
	n := t.Len()
	v := &PinView{
		pins:      p,
		table:     t,
		pinnable:  make([]bool, n),
		revokedAt: slices.Clone(p.revokedAt),
		revokedU:  make([]uint64, n),
	}
	for i := range n {
		v.pinnable[i] = t.Cell(i).Weight > 0 && !p.revoked[i]
		if v.revokedAt[i] != 0 {
			v.revokedU[i] = p.units(v.revokedAt[i]) + 1
		}
	}
	return v
}
