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
//   - slots, a fixed array of 4-way buckets of atomic words, remembers for
//     each recently seen key (by a 16-bit tag of its hash) the cell that last
//     served it and when. A request whose key is found on the cell it would
//     pick anyway costs one bucket read (one cache line) and, at most once a
//     second per key, one atomic store: no cache lookup, no allocation. A key
//     found on another cell is the signal that a pin exists or is due.
//   - pins, a ristretto cache keyHash → (cell, assigned at, last seen), is
//     the authoritative pin record, bounded by cost: when it is full its
//     TinyLFU admission keeps the pins that are used and drops the rest.
//     It holds the assigned-at that revocation and signed cookies need, and
//     keeps pins whose slot was overwritten by a bucket overflow.
//
// Why not remember only timestamps and recompute the previous pick from the
// previous table? A rollout swaps tables many times (ramped steps a tick
// apart); a key silent across several swaps would need the table of its last
// visit, and timestamps shared by colliding keys would mis-date it. The cell
// index in the slot answers "which cell served this key last" directly.
//
// Collisions: two keys share a slot only if they land in the same bucket and
// have the same 16-bit tag (1 in 65 536 per bucket neighbour); the second
// then inherits the first's cell and may be pinned though it is new. A bucket
// with more than four active keys evicts the oldest and marks the bucket
// overflowed; keys missing from an overflowed bucket pay a cache lookup so
// their pins, kept in the cache, still hold.
type Pins struct {
	cache      *ristretto.Cache[uint64, *pin]
	slots      []atomic.Uint64 // 4-way buckets, see slot encoding below
	bucketMask uint64
	idle       int64 // ns
	idleUnits  uint64
	refresh    uint64 // slot time units between refreshes of an unchanged slot
	base       int64  // ns; slot times count from here
	now        func() time.Time
	capacity   int64 // pins the cache holds at most

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
	// MaxBytes bounds the memory of slots and pin cache together. A quarter
	// (rounded down to a power of two) goes to slots, the rest to the cache.
	// At least MinPinMemory.
	MaxBytes int64
	// Idle is how long a session may be silent and keep its pin.
	Idle time.Duration
	// Now is the clock Swap stamps revocations with. Nil: time.Now. The
	// request path passes its own now to Route, from the same clock.
	Now func() time.Time
}

// MinPinMemory is the smallest pin budget: 4096 slots and a few hundred pins.
const MinPinMemory = 128 << 10

// pinCost is the bytes one cached pin is charged. TestPinFloodMemory
// measures 190–250 B per held pin (Go 1.26, amd64), varying with where the
// maps are in their growth: the shard map's entry, the policy's key-cost map
// entry, the *pin itself (32 B) and ten TinyLFU counters (~2 B each, rounded
// up to a power of two). It is charged as the item's cost with
// IgnoreInternalCost, so MaxCost is a byte budget with ~15 % headroom.
const pinCost = 288

// countersPerPin is ristretto's advice: ten frequency counters per item the
// cache can hold.
const countersPerPin = 10

// Slot encoding: one uint64 per entry, 0 = empty.
//
//	bits 0–38  last seen, in units of 2^20 ns (~1 ms) since Pins.base (17 years)
//	bit  39    overflow: this bucket evicted an active entry to store this one
//	bits 40–47 cell index that served the key (255: none)
//	bits 48–63 tag: the top 16 bits of the key hash
const (
	slotUnitShift = 20
	slotTimeMask  = 1<<39 - 1
	slotOverflow  = 1 << 39
	slotCellShift = 40
	slotTagShift  = 48
	slotWays      = 4
	slotNoCell    = 255
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
	slotBytes := int64(1) << (63 - bits.LeadingZeros64(uint64(cfg.MaxBytes/4)))
	nslots := slotBytes / 8
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
	p := &Pins{
		cache:      cache,
		slots:      make([]atomic.Uint64, nslots),
		bucketMask: uint64(nslots/slotWays - 1),
		idle:       idle,
		idleUnits:  uint64(idle >> slotUnitShift),
		refresh:    uint64(min(idle/16, int64(time.Second)) >> slotUnitShift),
		base:       now().UnixNano(),
		now:        now,
		capacity:   capacity,
	}
	return p, nil
}

// ristrettoFixed is ristretto's memory that does not grow with pins: 256
// shard maps, the set buffer (32 Ki pointers) and get-buffer stripes.
const ristrettoFixed = 512 << 10

// Capacity is how many pins the cache holds at most.
func (p *Pins) Capacity() int64 { return p.capacity }

// Slots is the number of slot entries.
func (p *Pins) Slots() int { return len(p.slots) }

// Close stops the cache's goroutines. Routing through a closed table still
// works; it just pins nothing.
func (p *Pins) Close() { p.cache.Close() }

// Wait blocks until pins set so far are visible (ristretto applies Sets
// asynchronously). For tests and sweeps.
func (p *Pins) Wait() { p.cache.Wait() }

// units converts ns since the epoch to slot time units (≥ 1, so a stored
// entry is never 0).
func (p *Pins) units(now int64) uint64 {
	d := now - p.base
	if d < 0 {
		d = 0
	}
	return uint64(d>>slotUnitShift)&slotTimeMask | 1
}

// bucket returns the key's four slot entries.
func (p *Pins) bucket(h uint64) []atomic.Uint64 {
	i := (h & p.bucketMask) * slotWays
	return p.slots[i : i+slotWays : i+slotWays]
}

func slotEntry(tag uint64, cell int, t uint64) uint64 {
	return tag<<slotTagShift | uint64(cell)<<slotCellShift | t
}

// reset forgets every slot and pin, for a change of cell layout (indices
// would no longer mean the same cells).
func (p *Pins) reset() {
	p.cache.Clear()
	for i := range p.slots {
		p.slots[i].Store(0)
	}
}
