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
