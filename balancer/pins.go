package balancer

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Session pins keep a user's session on the cell that served it while a
// promotion moves its key elsewhere, and let it go at once on a revert.
//
// Two structures share the work, because the hot path must stay cheap for
// the many keys that are not pinned:
//
//   - slots, a fixed array of 4-way buckets of atomic 32-bit words,
//     remembers for each recently seen key (by a 12-bit tag of its hash) the
//     cell that last served it and when. A request whose key is found on the
//     cell it would pick anyway costs one bucket read (16 bytes, one cache
//     line) and, at most once per slot time unit per key, one atomic store:
//     no cache lookup, no allocation. A key found on another cell is the
//     signal that a pin exists or is due.
//   - pins, a ristretto cache keyHash → (cell, assigned at, last seen), is
//     the authoritative pin record, bounded by cost: when it is full its
//     TinyLFU admission keeps the pins that are used and drops the rest.
//     It holds the assigned-at that revocation and signed cookies need, and
//     keeps pins whose slot was overwritten by a bucket overflow.
//
// Why 32-bit entries? On a busy node the bucket read misses the CPU cache,
// and what it costs depends on the array's size more than on anything else:
// on the 2-core EPYC VM of PINS.md a random read costs ≈ 20 ns in 4 MiB and
// ≈ 110 ns in 16 MiB (beyond the TLB's and the L3 share's reach). Halving
// the entry halves the array for the same number of keys.
//
// Why not remember only timestamps and recompute the previous pick from the
// previous table? A rollout swaps tables many times (ramped steps a tick
// apart); a key silent across several swaps would need the table of its last
// visit, and timestamps shared by colliding keys would mis-date it. The cell
// index in the slot answers "which cell served this key last" directly.
//
// Collisions: two keys share a slot only if they land in the same bucket and
// have the same 12-bit tag (1 in 4096 per bucket neighbour); the second
// then inherits the first's cell and may be pinned though it is new. A bucket
// with more than four active keys evicts the oldest; a key missing from a
// bucket whose four entries are all active pays a cache lookup, so the pin
// of a key evicted while active, kept in the cache, still holds.
//
// Slot times are kept modulo 4096 units of about idle/64–idle/128, so an
// entry silent for 16 idles or more would read as recent again: sweepLoop
// clears entries idle longer than pin_idle every 256 units (2–4 idles).
type Pins struct {
	cache      *ristretto.Cache[uint64, *pin]
	slots      []atomic.Uint32 // 4-way buckets, see slot encoding below
	bucketMask uint64
	idle       int64 // ns
	unitShift  uint  // a slot time unit is 2^unitShift ns
	idleUnits  uint64
	refresh    uint64 // slot time units between refreshes of an unchanged slot (≥ 1)
	refreshNs  int64  // ns between refreshes of a cached pin's last seen
	base       int64  // ns; slot times count from here
	now        func() time.Time
	capacity   int64 // pins the cache holds at most

	stop     chan struct{} // closed by Close: sweepLoop returns
	stopOnce sync.Once

	// mu serialises Swap and guards the rollout memory below, indexed like
	// the cells of the last table.
	mu        sync.Mutex
	layout    []string // cell names of the last table, in order
	rising    []bool   // share rose in a promotion of the current rollout
	revoked   []bool   // share fell in a revert and has not risen since
	revokedAt []int64  // ns; pins assigned (or slots written) at or before are void
}

// pin is one pinned session. The pointer is stored in the cache so a hit
// refreshes seen in place, without a Set.
type pin struct {
	cell     int32
	assigned int64 // ns
	seen     atomic.Int64
}

// PinConfig sizes a pin table. Zero values are errors, not defaults: the
// proxy derives them from routing.pin_memory and routing.pin_idle.
type PinConfig struct {
	// MaxBytes bounds the memory of slots and pin cache together. A
	// sixteenth (rounded down to a power of two) goes to slots, the rest to
	// the cache: 4 MiB of slots (1 Mi keys) for 64 MiB.
	// At least MinPinMemory.
	MaxBytes int64
	// Idle is how long a session may be silent and keep its pin.
	Idle time.Duration
	// Now is the clock Swap stamps revocations with. Nil: time.Now. The
	// request path passes its own now to Route, from the same clock.
	Now func() time.Time
}

// MinPinMemory is the smallest pin budget: 16 Ki slots and ~1600 pins. (It
// was 128 KiB, which NewPins refused: ristretto's fixed memory alone is
// ristrettoFixed.)
const MinPinMemory = 1 << 20

// pinCost is the bytes one cached pin is charged. Flooding budgets from 4
// to 64 MiB measures 182–292 B per held pin (Go 1.26, amd64), varying with
// where the maps are in their growth: the shard map's entry, the policy's
// key-cost map entry, the *pin itself (32 B) and ten TinyLFU counters (~2 B
// each, rounded up to a power of two). It is charged as the item's cost
// with IgnoreInternalCost, so MaxCost is a byte budget with ≥ 9 % headroom
// over the worst growth stage.
const pinCost = 320

// countersPerPin is ristretto's advice: ten frequency counters per item the
// cache can hold.
const countersPerPin = 10

// Slot encoding: one uint32 per entry, 0 = empty.
//
//	bits 0–11  last seen, in slot time units since Pins.base, modulo 4096
//	bits 12–19 1 + the index of the cell that served the key (never 0)
//	bits 20–31 tag: the top 12 bits of the key hash
//
// A unit is the largest power of two of nanoseconds at most idle/64 (and at
// least 2^20 ns, ~1 ms), so pin_idle spans 64–127 units and ages are exact
// to 1/64 of it. Ages of 2048 units or more read as 0: such an entry was
// written by a concurrent request with a later clock, since the sweeper
// clears entries long before they age that far.
const (
	slotSize         = 4 // bytes per entry
	slotTimeBits     = 12
	slotTimeMask     = 1<<slotTimeBits - 1
	slotCellShift    = 12
	slotTagShift     = 20
	slotWays         = 4
	slotMaxCell      = 253 // cells above it are never pinned
	slotMinUnitShift = 20
	slotUnitsPerIdle = 64  // at least
	slotSweepUnits   = 256 // sweep period: 2–4 idles, far below the 2048-unit horizon
)

// NewPins builds a pin table for cfg.
func NewPins(cfg PinConfig) (*Pins, error) {
	if cfg.MaxBytes < MinPinMemory {
		return nil, fmt.Errorf("pin memory %d bytes: want at least %d", cfg.MaxBytes, MinPinMemory)
	}
	if cfg.Idle <= 0 {
		return nil, errors.New("pin idle must be > 0")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	slotBytes := int64(1) << (63 - bits.LeadingZeros64(uint64(cfg.MaxBytes/16)))
	nslots := slotBytes / slotSize
	capacity := (cfg.MaxBytes - slotBytes - ristrettoFixed) / pinCost
	if capacity < 64 {
		return nil, fmt.Errorf("pin memory %d bytes: too small for the pin cache", cfg.MaxBytes)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, *pin]{
		NumCounters:        capacity * countersPerPin,
		MaxCost:            capacity * pinCost,
		BufferItems:        64, // ristretto's advice
		IgnoreInternalCost: true,
		KeyToHash:          func(k uint64) (uint64, uint64) { return k, 0 },
	})
	if err != nil {
		return nil, fmt.Errorf("pin cache: %w", err)
	}
	idle := cfg.Idle.Nanoseconds()
	shift := uint(max(63-bits.LeadingZeros64(uint64(max(idle/slotUnitsPerIdle, 1))), slotMinUnitShift))
	p := &Pins{
		cache:      cache,
		slots:      make([]atomic.Uint32, nslots),
		bucketMask: uint64(nslots/slotWays - 1),
		idle:       idle,
		unitShift:  shift,
		idleUnits:  uint64(idle >> shift),
		refresh:    max(uint64(min(idle/16, int64(time.Second))>>shift), 1),
		refreshNs:  min(idle/16, int64(time.Second)),
		base:       now().UnixNano(),
		now:        now,
		capacity:   capacity,
		stop:       make(chan struct{}),
	}
	go p.sweepLoop(time.Duration(int64(slotSweepUnits) << shift))
	return p, nil
}

// ristrettoFixed is ristretto's memory that does not grow with pins: 256
// shard maps, the set buffer (32 Ki pointers) and get-buffer stripes.
const ristrettoFixed = 512 << 10

// Capacity is how many pins the cache holds at most.
func (p *Pins) Capacity() int64 { return p.capacity }

// Slots is the number of slot entries.
func (p *Pins) Slots() int { return len(p.slots) }

// Close stops the cache's and the sweeper's goroutines. Routing through a
// closed table still works; it just pins nothing. Close may be called more
// than once.
func (p *Pins) Close() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.cache.Close()
	})
}

// sweepLoop clears idle slot entries every period until Close. Slot times
// wrap after 4096 units; without it an entry silent for 32–64 idles would
// pass for recent, and its key could be pinned to a cell it left long ago.
func (p *Pins) sweepLoop(period time.Duration) {
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tk.C:
			p.sweep(p.units(p.now().UnixNano()))
		}
	}
}

// sweep clears the entries idle at t (absolute slot units). A lost race
// with a request that refreshed the entry keeps it, which is right.
func (p *Pins) sweep(t uint64) {
	for i := range p.slots {
		if e := p.slots[i].Load(); e != 0 && age(t, e) > p.idleUnits {
			p.slots[i].CompareAndSwap(e, 0)
		}
	}
}

// Wait blocks until pins set so far are visible (ristretto applies Sets
// asynchronously). For tests and sweeps.
func (p *Pins) Wait() { p.cache.Wait() }

// units converts ns since the Unix epoch to slot time units since
// Pins.base, not wrapped: entries keep the low 12 bits, revocations all.
func (p *Pins) units(now int64) uint64 {
	return uint64(max(now-p.base, 0) >> p.unitShift)
}

// bucket returns the key's four slot entries.
func (p *Pins) bucket(h uint64) []atomic.Uint32 {
	i := (h & p.bucketMask) * slotWays
	return p.slots[i : i+slotWays : i+slotWays]
}

// slotTag is the part of key hash h an entry keeps. The bucket index comes
// from the low bits, so the two are independent.
func slotTag(h uint64) uint32 { return uint32(h >> (64 - (32 - slotTagShift))) }

// slotEntry encodes a visit by the key of tag, served by cell at t
// (absolute units). cell must be in [0, slotMaxCell].
func slotEntry(tag uint32, cell int, t uint64) uint32 {
	return tag<<slotTagShift | uint32(cell+1)<<slotCellShift | uint32(t)&slotTimeMask
}

// slotCell is the cell index entry e records.
func slotCell(e uint32) int { return int(e>>slotCellShift&0xff) - 1 }

// age is how many slot time units before t (absolute) entry e was written;
// 0 when a concurrent request with a slightly later clock wrote it (the
// modular difference is then near 4096).
func age(t uint64, e uint32) uint64 {
	d := (uint32(t) - e) & slotTimeMask
	if d >= 1<<(slotTimeBits-1) {
		return 0
	}
	return uint64(d)
}

// reset forgets every slot and pin, for a change of cell layout (indices
// would no longer mean the same cells).
func (p *Pins) reset() {
	p.cache.Clear()
	for i := range p.slots {
		p.slots[i].Store(0)
	}
}
