package slo

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// counts are the event counts of a window (or of one slot).
type counts struct {
	Requests   uint64
	AvailBad   uint64
	LatencyBad uint64
	TTFBBad    uint64
}

func (c *counts) add(o counts) {
	c.Requests += o.Requests
	c.AvailBad += o.AvailBad
	c.LatencyBad += o.LatencyBad
	c.TTFBBad += o.TTFBBad
}

// countSlot packs four counters into two words so a good request costs one
// atomic add: a = requests<<32 | availability-bad, b = latency-bad<<32 |
// ttfb-bad. 32 bits per slot is four billion events per interval.
type countSlot struct {
	a, b atomic.Uint64
}

func (s *countSlot) load() counts {
	a, b := s.a.Load(), s.b.Load()
	return counts{Requests: a >> 32, AvailBad: a & (1<<32 - 1), LatencyBad: b >> 32, TTFBBad: b & (1<<32 - 1)}
}

// epochRing is the rotation shared by the count ring and the histogram
// ring: slot e%n holds epoch e for the n−2 newest epochs up to cur. The two
// spare slots mean a reader that sums the readable span never touches the
// slot being recycled unless it stalls for two whole intervals.
type epochRing struct {
	width int64 // nanoseconds per epoch
	n     int64 // slots
	cur   atomic.Int64
	// hot is cur with its slot, packed as epoch<<slotBits | slot (0: not
	// packable, or not yet set), so a record in the current epoch — nearly
	// every record — finds its slot without the two 64-bit divisions
	// (ns/width, e%n) the general path takes: a request recorded in its
	// cell and eight flag cohorts did 54 of them. Stored after cur, so
	// its epoch is never ahead of cur.
	hot      atomic.Uint64
	slotBits uint

	// mu guards recycling: moving cur forward and clearing the slots it
	// reuses. Recorders take it once per epoch per cell; readers only when
	// they need a consistent view of recycled data (the lifetime histogram).
	mu sync.Mutex
}

// slot returns the slot for a record at ns, advancing the ring first (the
// rare, locked path) when ns starts a new epoch; ok is false for a record
// too old to keep. recycle is called under mu for every reused slot.
func (r *epochRing) slot(ns int64, recycle func(slot int64)) (slot int64, ok bool) {
	if h := r.hot.Load(); h != 0 {
		// The same answer as below for ns in the cached epoch: that epoch
		// is not ahead of cur, so nothing advances.
		e := int64(h >> r.slotBits)
		if off := ns - e*r.width; off >= 0 && off < r.width && r.cur.Load()-e < r.n-2 {
			return int64(h & (1<<r.slotBits - 1)), true
		}
	}
	e := ns / r.width
	if e > r.cur.Load() {
		r.advance(e, recycle)
	}
	if r.cur.Load()-e >= r.n-2 {
		return 0, false
	}
	return e % r.n, true
}

// advance moves cur to e, recycling the slots of the epochs in between.
func (r *epochRing) advance(e int64, recycle func(slot int64)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	if e <= cur {
		return
	}
	for ep := max(cur+1, e-r.n+1); ep <= e; ep++ {
		recycle(ep % r.n)
	}
	r.cur.Store(e)
	r.storeHot(e)
}

// start sets the ring's current epoch to the one holding nowNs (at
// construction, before any record).
func (r *epochRing) start(nowNs int64) {
	r.slotBits = uint(bits.Len64(uint64(r.n)))
	e := nowNs / r.width
	r.cur.Store(e)
	r.storeHot(e)
}

// storeHot caches epoch e (cur) and its slot in hot, or clears hot when
// they do not fit in one word.
func (r *epochRing) storeHot(e int64) {
	if e < 0 || e >= 1<<(63-r.slotBits) {
		r.hot.Store(0)
		return
	}
	r.hot.Store(uint64(e)<<r.slotBits | uint64(e%r.n))
}

// span clips the epoch range [lo, hi] to what the ring holds and calls f
// with each epoch and its slot index.
func (r *epochRing) span(lo, hi int64, f func(ep, slot int64)) {
	cur := r.cur.Load()
	hi = min(hi, cur)
	lo = max(lo, cur-(r.n-2)+1)
	for ep := lo; ep <= hi; ep++ {
		f(ep, ep%r.n)
	}
}

// holds reports whether epoch e is still in the ring.
func (r *epochRing) holds(e int64) bool { return r.cur.Load()-e < r.n-2 }

// countShards spreads concurrent recorders of one cell over separate
// copies of the count ring so they do not fight over one cache line (a
// contended atomic add costs 50–100 ns, an uncontended one 5). Each shard is
// its own slice, so the hot slots of two shards never share a line. Reads
// sum the shards.
const countShards = 4

// countRing is the ring of per-interval good/bad counts behind the burn
// windows and the judge's error-ratio comparison.
type countRing struct {
	epochRing
	shards [countShards][]countSlot
}

func newCountRing(widthNs, n, nowNs int64) *countRing {
	r := &countRing{epochRing: epochRing{width: widthNs, n: n}}
	for i := range r.shards {
		r.shards[i] = make([]countSlot, n)
	}
	r.start(nowNs)
	return r
}

func (r *countRing) recycle(slot int64) {
	for i := range r.shards {
		r.shards[i][slot].a.Store(0)
		r.shards[i][slot].b.Store(0)
	}
}

// add records packed deltas at ns into shard sh.
func (r *countRing) add(ns int64, sh uint32, a, b uint64) {
	slot, ok := r.slot(ns, r.recycle)
	if !ok {
		return // too old to keep
	}
	s := &r.shards[sh%countShards][slot]
	s.a.Add(a)
	if b != 0 {
		s.b.Add(b)
	}
}

// sum returns the counts of epochs lo..hi (inclusive).
func (r *countRing) sum(lo, hi int64) counts {
	var c counts
	r.span(lo, hi, func(_, slot int64) {
		for i := range r.shards {
			c.add(r.shards[i][slot].load())
		}
	})
	return c
}

// histSlice is one slice of the histogram ring.
type histSlice struct {
	total, ttfb atomicHist
	// sealedTotal and sealedTTFB cache a sparse copy of a complete slice
	// (the judge re-reads the same complete slices every tick); a copy is
	// valid for the epoch it is tagged with. Records that straggle into a
	// slice after it was sealed reach the lifetime histograms only.
	sealedTotal, sealedTTFB atomic.Pointer[sparseHist]
}

// histRing keeps latency and TTFB histograms for the last span in slices.
// Recycled slices are drained into the lifetime histograms (for the
// Prometheus export), so nothing is recorded twice on the hot path.
type histRing struct {
	epochRing
	slices []histSlice
	// lifeTotal and lifeTTFB are guarded by epochRing.mu.
	lifeTotal, lifeTTFB dist
	// cacheTotal and cacheTTFB hold the last merge of complete slices.
	cacheTotal, cacheTTFB atomic.Pointer[mergedRange]
}

func newHistRing(widthNs, n, nowNs int64) *histRing {
	r := &histRing{epochRing: epochRing{width: widthNs, n: n}, slices: make([]histSlice, n)}
	r.start(nowNs)
	return r
}

func (r *histRing) recycle(slot int64) {
	r.slices[slot].total.drain(&r.lifeTotal)
	r.slices[slot].ttfb.drain(&r.lifeTTFB)
}

// add records a total latency index and, when ti ≥ 0, a TTFB index.
func (r *histRing) add(ns int64, total, ti int) {
	slot, ok := r.slot(ns, r.recycle)
	if !ok {
		return // too old to keep
	}
	s := &r.slices[slot]
	s.total.add(total)
	if ti >= 0 {
		s.ttfb.add(ti)
	}
}

// merge adds the slices of epochs lo..hi into total and ttfb (either may
// be nil). Complete slices are merged once per range and cached (the judge
// asks for the same range every tick until a slice completes); the newest,
// still growing slice is read from the atomics every time (when live).
func (r *histRing) merge(lo, hi int64, total, ttfb *dist, live bool) {
	cur := r.cur.Load()
	doneHi := hi - 1 // hi is the slice that "to" falls in: still growing
	if total != nil {
		r.mergedDone(&r.cacheTotal, lo, doneHi, func(s *histSlice) (*atomic.Pointer[sparseHist], *atomicHist) {
			return &s.sealedTotal, &s.total
		}).addTo(total)
	}
	if ttfb != nil {
		r.mergedDone(&r.cacheTTFB, lo, doneHi, func(s *histSlice) (*atomic.Pointer[sparseHist], *atomicHist) {
			return &s.sealedTTFB, &s.ttfb
		}).addTo(ttfb)
	}
	if live && hi == cur {
		s := &r.slices[cur%r.n]
		if total != nil {
			s.total.addTo(total)
		}
		if ttfb != nil {
			s.ttfb.addTo(ttfb)
		}
	}
}

// mergedRange is a cached merge of the complete slices lo..hi.
type mergedRange struct {
	lo, hi int64
	d      dist
}

func (m *mergedRange) addTo(d *dist) { d.addDist(&m.d) }

// mergedDone returns the merge of complete slices lo..hi, from the cache
// when it holds that range.
func (r *histRing) mergedDone(cache *atomic.Pointer[mergedRange], lo, hi int64,
	pick func(*histSlice) (*atomic.Pointer[sparseHist], *atomicHist)) *mergedRange {
	if m := cache.Load(); m != nil && m.lo == lo && m.hi == hi {
		return m
	}
	m := &mergedRange{lo: lo, hi: hi}
	r.span(lo, hi, func(ep, slot int64) {
		p, h := pick(&r.slices[slot])
		sealed(p, h, ep).addTo(&m.d)
	})
	cache.Store(m)
	return m
}

// lifetime returns everything ever recorded: the drained slices plus the
// live ones, read under mu so no slice is counted twice or missed. The
// dists draw chunks from pool (may be nil); release them after use.
func (r *histRing) lifetime(pool *sync.Pool) (total, ttfb dist) {
	total.pool, ttfb.pool = pool, pool
	r.mu.Lock()
	defer r.mu.Unlock()
	total.addDist(&r.lifeTotal)
	ttfb.addDist(&r.lifeTTFB)
	cur := r.cur.Load()
	for k := range r.n {
		ep := cur - k
		s := &r.slices[ep%r.n]
		if k == 0 {
			s.total.addTo(&total)
			s.ttfb.addTo(&ttfb)
			continue
		}
		// Complete slices: their sealed copies (built once, shared with
		// the judge) keep the time under mu short.
		sealed(&s.sealedTotal, &s.total, ep).addTo(&total)
		sealed(&s.sealedTTFB, &s.ttfb, ep).addTo(&ttfb)
	}
	return total, ttfb
}
