package balancer

import "sync/atomic"

// PinView is the pin rules for one routing table: which cells may hold
// pins, and since when pins to each are void. Pins.Swap builds one per table;
// like a Table it is immutable and published with the table, so a request
// sees a table and its rules together.
type PinView struct {
	pins      *Pins
	table     *Table
	pinnable  []bool  // by cell index: weight > 0 and not reverted
	revokedAt []int64 // by cell index, ns
	revokedU  []uint64
}

// PinClaim is a pin read from a signed cookie: the cell (an index into the
// view's table, -1 for none) and its times in ns since the Unix epoch.
type PinClaim struct {
	Cell       int
	AssignedAt int64
	SeenAt     int64
}

// NoClaim is the claim of a request without a (valid) pin cookie.
var NoClaim = PinClaim{Cell: -1}

// Decision is where Route sent a request. Pinned means Cell is not the
// table's pick for the key: a pin holds the session there; AssignedAt is
// when that pin was made (ns), for the cookie that carries it.
type Decision struct {
	Cell       int
	Pinned     bool
	AssignedAt int64
}

// Table is the routing table the view belongs to.
func (v *PinView) Table() *Table { return v.table }

// Route picks the cell for keyHash at time now (ns since the Unix epoch,
// from the same clock as PinConfig.Now), honouring a valid pin: claim (from
// a cookie), else the local pin table. It records the visit, so a session
// that is later moved by a promotion is recognised as active. Route is safe
// for concurrent use and, for a key that is not pinned, does no cache
// lookup unless its bucket overflowed, and never allocates.
func (v *PinView) Route(keyHash uint64, now int64, claim PinClaim) Decision {
	p := v.pins
	t := p.units(now)
	b := p.bucket(keyHash)
	tag := keyHash >> slotTagShift
	// The bucket is read before the pick so that, on a busy node where it
	// is not in cache, the memory access overlaps the pick's arithmetic.
	way, e, overflow := v.find(b, tag, t)
	c := v.table.Pick(keyHash)
	if c < 0 || c >= slotNoCell {
		return Decision{Cell: c}
	}
	if claim.Cell >= 0 && v.claimValid(claim, c, now) {
		v.note(b, tag, claim.Cell, t)
		return Decision{Cell: claim.Cell, Pinned: true, AssignedAt: claim.AssignedAt}
	}
	if way >= 0 {
		last := int(e >> slotCellShift & 0xff)
		if last == c {
			if age(t, e) >= p.refresh {
				b[way].CompareAndSwap(e, e&^slotTimeMask|t)
			}
			return Decision{Cell: c}
		}
		// Served elsewhere last time: a pin holds it there, or a weight
		// change moved its key since.
		if d, ok := v.fromCache(keyHash, c, now); ok {
			b[way].CompareAndSwap(e, slotEntry(tag, d.Cell, t)|e&slotOverflow)
			return d
		}
		if last != slotNoCell && v.mayPin(last, e, t) {
			d := v.newPin(keyHash, last, now)
			b[way].CompareAndSwap(e, slotEntry(tag, last, t)|e&slotOverflow)
			return d
		}
		b[way].CompareAndSwap(e, slotEntry(tag, c, t)|e&slotOverflow)
		return Decision{Cell: c}
	}
	d := Decision{Cell: c}
	if overflow {
		// The key may have been evicted from its bucket while pinned.
		if pd, ok := v.fromCache(keyHash, c, now); ok {
			d = pd
		}
	}
	v.insert(b, tag, d.Cell, t)
	return d
}

// Pick is Route without a claim, returning only the cell.
func (v *PinView) Pick(keyHash uint64, now int64) int {
	return v.Route(keyHash, now, NoClaim).Cell
}

// find returns the bucket way holding tag (or -1) and its entry, and
// whether the bucket holds an active overflow mark.
func (v *PinView) find(b []atomic.Uint64, tag, t uint64) (int, uint64, bool) {
	overflow := false
	for i := range b {
		e := b[i].Load()
		if e == 0 {
			continue
		}
		if e>>slotTagShift == tag {
			return i, e, false
		}
		if e&slotOverflow != 0 && age(t, e) <= v.pins.idleUnits {
			overflow = true
		}
	}
	return -1, 0, overflow
}

// insert stores a new entry in an empty way, else over the oldest one;
// evicting an entry still active marks the bucket overflowed. A lost race
// loses the entry, which only costs that key its continuity.
func (v *PinView) insert(b []atomic.Uint64, tag uint64, cell int, t uint64) {
	oldest, oldT, old := 0, ^uint64(0), uint64(0)
	for i := range b {
		e := b[i].Load()
		if e == 0 {
			oldest, old = i, 0
			break
		}
		if et := e & slotTimeMask; et < oldT {
			oldest, oldT, old = i, et, e
		}
	}
	ne := slotEntry(tag, cell, t)
	if old != 0 && age(t, old) <= v.pins.idleUnits {
		ne |= slotOverflow
	}
	b[oldest].CompareAndSwap(old, ne)
}

// note records that the key was served by cell now (a cookie pin).
func (v *PinView) note(b []atomic.Uint64, tag uint64, cell int, t uint64) {
	way, e, _ := v.find(b, tag, t)
	if way < 0 {
		v.insert(b, tag, cell, t)
		return
	}
	if int(e>>slotCellShift&0xff) != cell || age(t, e) >= v.pins.refresh {
		b[way].CompareAndSwap(e, slotEntry(tag, cell, t)|e&slotOverflow)
	}
}

// valid reports whether a pin to cell assigned at assigned and last used at
// seen still holds for a key whose pick is c: the cell still takes traffic
// and was not reverted since the pin was made, the session is not idle, and
// the pin still differs from the pick (otherwise it is moot).
func (v *PinView) valid(cell, c int, assigned, seen, now int64) bool {
	return cell != c && cell >= 0 && cell < len(v.pinnable) && v.pinnable[cell] &&
		assigned > v.revokedAt[cell] && now-seen <= v.pins.idle && seen-now <= v.pins.idle
}

func (v *PinView) claimValid(cl PinClaim, c int, now int64) bool {
	return v.valid(cl.Cell, c, cl.AssignedAt, cl.SeenAt, now)
}

// mayPin reports whether a key whose slot entry e says it was last served
// by cell, now picked elsewhere, gets a pin: the session is active and the
// cell may hold pins and was not reverted after that visit.
func (v *PinView) mayPin(cell int, e, t uint64) bool {
	return cell < len(v.pinnable) && v.pinnable[cell] && age(t, e) <= v.pins.idleUnits &&
		e&slotTimeMask > v.revokedU[cell]
}

// age is how many slot time units before t entry e was written; 0 when a
// concurrent request with a slightly later clock wrote it.
func age(t, e uint64) uint64 {
	et := e & slotTimeMask
	if et > t {
		return 0
	}
	return t - et
}

// fromCache looks the key up in the pin cache: one lookup. A pin that no
// longer holds is deleted.
func (v *PinView) fromCache(h uint64, c int, now int64) (Decision, bool) {
	pn, ok := v.pins.cache.Get(h)
	if !ok || pn == nil {
		return Decision{}, false
	}
	if !v.valid(int(pn.cell), c, pn.assigned, pn.seen.Load(), now) {
		v.pins.cache.Del(h)
		return Decision{}, false
	}
	if now-pn.seen.Load() >= int64(v.pins.refresh<<slotUnitShift) {
		pn.seen.Store(now)
	}
	return Decision{Cell: int(pn.cell), Pinned: true, AssignedAt: pn.assigned}, true
}

// newPin records a pin of key h to cell. ristretto may drop the Set under
// contention; the slot, which says the key was last served by cell, makes
// the next request pin it again.
func (v *PinView) newPin(h uint64, cell int, now int64) Decision {
	pn := &pin{cell: int32(cell), assigned: now}
	pn.seen.Store(now)
	v.pins.cache.Set(h, pn, pinCost)
	return Decision{Cell: cell, Pinned: true, AssignedAt: now}
}

// Counts returns, by cell index, the pins in the cache that hold at now
// (pins carried only by cookies, or only by slots after a dropped Set, are
// not counted). It walks the cache: call it on status and scrape, not per
// request.
func (v *PinView) Counts(now int64) []int64 {
	out := make([]int64, v.table.Len())
	v.pins.cache.IterValues(func(pn *pin) bool {
		cell := int(pn.cell)
		if cell < len(v.pinnable) && v.pinnable[cell] && pn.assigned > v.revokedAt[cell] &&
			now-pn.seen.Load() <= v.pins.idle {
			out[cell]++
		}
		return false
	})
	return out
}

// IndexBytes returns the position of the cell named name, or -1, without
// allocating (for names read from cookies).
func (t *Table) IndexBytes(name []byte) int {
	for i := range t.cells {
		if t.cells[i].Name == string(name) {
			return i
		}
	}
	return -1
}
