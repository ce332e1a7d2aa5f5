package balancer

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPickPins compares a 16-cell pick without pins (Table.Pick) and
// with pins on for keys that are not pinned (PinView.Route), during a
// promotion, over a population of active sessions: 1 Ki keys (slots in
// cache) and 256 Ki keys (slot reads miss the CPU cache, as on a busy node).
func BenchmarkPickPins(b *testing.B) {
	ws := make(map[string]float64, 16)
	order := make([]string, 16)
	for i := range order {
		order[i] = fmt.Sprintf("cell-%d", i)
		ws[order[i]] = float64(1 + i%7)
	}
	tab := NewTable(testSeed, named(ws, order...))
	for _, n := range []int{1 << 10, 1 << 18} {
		hs := hashes(n, 9)
		b.Run(fmt.Sprintf("cells=16/keys=%d/pins=off", n), func(b *testing.B) {
			b.ReportAllocs()
			sink := 0
			for i := 0; b.Loop(); i++ {
				sink += tab.Pick(hs[i&(n-1)])
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("cells=16/keys=%d/pins=on", n), func(b *testing.B) {
			clk := newFakeClock()
			p, err := NewPins(PinConfig{MaxBytes: 64 << 20, Idle: 5 * time.Minute, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			v := p.Swap(nil, tab, false)
			// A promotion is under way: cell-15 rose, so pins may exist.
			w := map[string]float64{"cell-15": ws["cell-15"] * 1.5}
			v = p.Swap(v, tab.WithWeights(w), false)
			now := clk.nano()
			for _, h := range hs { // sessions seen since the swap
				v.Route(h, now, NoClaim)
			}
			b.ReportAllocs()
			b.ResetTimer()
			sink := 0
			for i := 0; b.Loop(); i++ {
				d := v.Route(hs[i&(n-1)], now, NoClaim)
				sink += d.Cell
			}
			_ = sink
		})
	}
}

// BenchmarkRoutePinned measures the request path of a pinned session (a
// ristretto lookup on top of the pick and the slot read) with 16 Ki and
// 1 Mi active pins in a 512 MiB budget, as bench/scaling.sh's pin sweep
// sets them up: two cells, a promotion that moves ~90 % of the keys, and
// every key visited before and after it. Keys are visited in a scattered
// order, as requests of many users arrive. bench/README.md ("Scaling")
// compares it with the end-to-end cost per request.
func BenchmarkRoutePinned(b *testing.B) {
	for _, n := range []int{1 << 14, 1 << 20} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			clk := newFakeClock()
			p, err := NewPins(PinConfig{MaxBytes: 512 << 20, Idle: 5 * time.Minute, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ws := map[string]float64{"old": 100, "new": 0}
			tab := NewTable(testSeed, named(ws, "old", "new"))
			v := p.Swap(nil, tab, false)
			hs := hashes(n, 11)
			now := clk.nano()
			for _, h := range hs {
				v.Route(h, now, NoClaim)
			}
			v = p.Swap(v, tab.WithWeights(map[string]float64{"new": 900}), false)
			for range 2 { // the second pass re-makes pins whose Set ristretto dropped
				for _, h := range hs {
					v.Route(h, now, NoClaim)
				}
				p.cache.Wait()
			}
			pinned := 0
			for _, h := range hs {
				if v.Route(h, now, NoClaim).Pinned {
					pinned++
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			sink := 0
			for i := 0; b.Loop(); i++ {
				// An odd stride over a power of two visits every key and
				// jumps far each time.
				sink += v.Route(hs[(i*40503)&(n-1)], now, NoClaim).Cell
			}
			_ = sink
			b.ReportMetric(float64(pinned)/float64(n), "pinned/key")
		})
	}
}
