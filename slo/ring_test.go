package slo

import (
	"math/rand/v2"
	"testing"
)

// refSlot is epochRing.slot without the cached current epoch: the
// divisions the fast path must agree with.
func refSlot(r *epochRing, ns int64) (int64, bool) {
	e := ns / r.width
	if e > r.cur.Load() {
		r.advance(e, func(int64) {})
	}
	if r.cur.Load()-e >= r.n-2 {
		return 0, false
	}
	return e % r.n, true
}

// TestEpochRingHotSlot: the slot a record lands in, and whether it is
// kept, are the same with the cached current epoch as by dividing, for
// records in the current epoch, stragglers from older ones (kept and too
// old), jumps ahead over many epochs, and epochs too large to cache.
func TestEpochRingHotSlot(t *testing.T) {
	for _, c := range []struct {
		name     string
		width, n int64
		start    int64
	}{
		{"interval", 1e9, 1802, 1_790_000_000_123_456_789},
		{"fine", 1e8, 62, 1_790_000_000_123_456_789},
		{"slice", 5e9, 15, 1_790_000_000_123_456_789},
		{"sim-epoch", 1e9, 8, 3 * 1e9},
		{"uncacheable", 1, 1 << 20, 1_790_000_000_123_456_789},
	} {
		t.Run(c.name, func(t *testing.T) {
			fast := &epochRing{width: c.width, n: c.n}
			ref := &epochRing{width: c.width, n: c.n}
			fast.start(c.start)
			ref.start(c.start)
			if c.name == "uncacheable" && fast.hot.Load() != 0 {
				t.Fatalf("epoch %d cached with %d slot bits", c.start/c.width, fast.slotBits)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ns, hits := c.start, 0
			for i := range 20000 {
				switch k := rng.IntN(100); {
				case k < 75: // the common case: time moves on a little
					ns += rng.Int64N(max(c.width/10, 1))
				case k < 85: // the last or first nanosecond of an epoch
					ns = (ns/c.width+1)*c.width - rng.Int64N(2)
				case k < 90: // a straggler, maybe older than the ring
					ns -= rng.Int64N(c.width * (c.n + 2))
				case k < 98: // the next epoch or a few
					ns += rng.Int64N(c.width * 4)
				default: // an idle spell longer than the ring
					ns += c.width * (c.n + rng.Int64N(c.n))
				}
				ns = max(ns, 0)
				if fast.hot.Load() != 0 {
					hits++
				}
				gs, gok := fast.slot(ns, func(int64) {})
				ws, wok := refSlot(ref, ns)
				if gs != ws || gok != wok || fast.cur.Load() != ref.cur.Load() {
					t.Fatalf("step %d, ns %d: slot %d %v cur %d; dividing gives %d %v cur %d",
						i, ns, gs, gok, fast.cur.Load(), ws, wok, ref.cur.Load())
				}
			}
			if c.name != "uncacheable" && hits == 0 {
				t.Error("the current epoch was never cached")
			}
		})
	}
}
