package balancer

import "sync/atomic"

// PinView is the pin rules for one routing table: which cells may hold
// pins, and since when pins to each are void. Pins.Swap builds one per table;
// like a Table it is immutable and published with the table, so a request
// sees a table and its rules together.
type PinView struct {
	pins      *Pins
	table     *Table
	pinnable  []bool   // by cell index: weight > 0 and not reverted
	revokedAt []int64  // by cell index, ns
	revokedU  []uint64 // by cell index: 1 + slot units of revokedAt, 0 for none
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
// lookup unless its bucket is full of active keys, and never allocates.
func (v *PinView) Route(keyHash uint64, now int64, claim PinClaim) Decision {
	p := v.pins
	b := p.bucket(keyHash)
	// Read the bucket before the pick, into locals and with no branch on
	// what was read: on a busy node the bucket is not in the CPU cache, and
	// the memory access then overlaps the pick's arithmetic. A branch on the
	// words here would resolve only when the access completes, and when
	// mispredicted would discard the pick's work done meanwhile.
	ws := load(b)
	c := v.table.Pick(keyHash)
	t := p.units(now)
	tag := slotTag(keyHash)
	way, e, full := v.find(&ws, tag, t)
	if c < 0 || c > slotMaxCell {
		return Decision{Cell: c}
	}
	if claim.Cell >= 0 && claim.Cell <= slotMaxCell && v.claimValid(claim, c, now) {
		v.note(b, tag, claim.Cell, t)
		return Decision{Cell: claim.Cell, Pinned: true, AssignedAt: claim.AssignedAt}
	}
	if way >= 0 {
		last := slotCell(e)
		if last == c {
			if age(t, e) >= p.refresh {
				b[way].CompareAndSwap(e, slotEntry(tag, c, t))
			}
			return Decision{Cell: c}
		}
		// Served elsewhere last time: a pin holds it there, or a weight
		// change moved its key since.
		if d, ok := v.fromCache(keyHash, c, now); ok {
			b[way].CompareAndSwap(e, slotEntry(tag, d.Cell, t))
			return d
		}
		if v.mayPin(last, e, t) {
			d := v.newPin(keyHash, last, now)
			b[way].CompareAndSwap(e, slotEntry(tag, last, t))
			return d
		}
		b[way].CompareAndSwap(e, slotEntry(tag, c, t))
		return Decision{Cell: c}
	}
	d := Decision{Cell: c}
	if full {
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

// load reads the four words of bucket b.
func load(b []atomic.Uint32) [slotWays]uint32 {
	return [slotWays]uint32{b[0].Load(), b[1].Load(), b[2].Load(), b[3].Load()}
}

// find returns the way of bucket words ws holding tag (or -1) and its
// entry, and, when tag is missing, whether all four ways hold active keys:
// then a key may have been evicted from the bucket while pinned.
func (v *PinView) find(ws *[slotWays]uint32, tag uint32, t uint64) (int, uint32, bool) {
	active := 0
	for i, e := range ws {
		if e == 0 {
			continue
		}
		if e>>slotTagShift == tag {
			return i, e, false
		}
		if age(t, e) <= v.pins.idleUnits {
			active++
		}
	}
	return -1, 0, active == slotWays
}

// insert stores a new entry in an empty way, else over the oldest one. A
// lost race loses the entry, which only costs that key its continuity.
func (v *PinView) insert(b []atomic.Uint32, tag uint32, cell int, t uint64) {
	oldest, oldAge, old := 0, uint64(0), uint32(0)
	for i := range b {
		e := b[i].Load()
		if e == 0 {
			oldest, old = i, 0
			break
		}
		if a := age(t, e); i == 0 || a > oldAge {
			oldest, oldAge, old = i, a, e
		}
	}
	b[oldest].CompareAndSwap(old, slotEntry(tag, cell, t))
}

// note records that the key was served by cell now (a cookie pin).
func (v *PinView) note(b []atomic.Uint32, tag uint32, cell int, t uint64) {
	ws := load(b)
	way, e, _ := v.find(&ws, tag, t)
	if way < 0 {
		v.insert(b, tag, cell, t)
		return
	}
	if slotCell(e) != cell || age(t, e) >= v.pins.refresh {
		b[way].CompareAndSwap(e, slotEntry(tag, cell, t))
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
// cell may hold pins and was not reverted after that visit (the entry was
// written in a later slot unit than the revocation: at the unit's grain,
// a visit in the same unit counts as before).
func (v *PinView) mayPin(cell int, e uint32, t uint64) bool {
	if cell < 0 || cell >= len(v.pinnable) || !v.pinnable[cell] {
		return false
	}
	a := age(t, e)
	after := v.revokedU[cell] // first unit whose visits postdate the revocation
	return a <= v.pins.idleUnits && (after == 0 || t >= after && a <= t-after)
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
	if now-pn.seen.Load() >= v.pins.refreshNs {
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
