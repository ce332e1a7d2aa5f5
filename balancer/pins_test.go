package balancer

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) nano() int64             { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func named(ws map[string]float64, order ...string) []Cell {
	out := make([]Cell, len(order))
	for i, n := range order {
		out[i] = Cell{Name: n, Weight: ws[n]}
	}
	return out
}

const testIdle = 5 * time.Minute

// newTestPins returns pins with a 16 MiB budget on clk, closed at cleanup.
func newTestPins(t testing.TB, clk *fakeClock) *Pins {
	t.Helper()
	p, err := NewPins(PinConfig{MaxBytes: 16 << 20, Idle: testIdle, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// rig is a pin table with its current view, swapped like the proxy does.
type rig struct {
	pins *Pins
	view *PinView
	clk  *fakeClock
}

func newRig(t testing.TB, cells []Cell) *rig {
	clk := newFakeClock()
	p := newTestPins(t, clk)
	return &rig{pins: p, view: p.Swap(nil, NewTable(testSeed, cells), false), clk: clk}
}

func (r *rig) set(w map[string]float64)    { r.swap(w, false) }
func (r *rig) revert(w map[string]float64) { r.swap(w, true) }
func (r *rig) swap(w map[string]float64, revert bool) {
	r.view = r.pins.Swap(r.view, r.view.Table().WithWeights(w), revert)
}

// routeAll routes every key now and returns the decisions.
func (r *rig) routeAll(hs []uint64) []Decision {
	out := make([]Decision, len(hs))
	for i, h := range hs {
		out[i] = r.view.Route(h, r.clk.nano(), NoClaim)
	}
	return out
}

func hashes(n int, salt uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = mix64(uint64(i) ^ salt<<40)
	}
	return out
}

// TestPinsPromotionKeepsActiveSessions: during a promotion 5 → 25 %,
// sessions active before it stay on their cell, renewed by each request,
// until they idle for pin_idle; then they move. New keys follow the new
// weights from their first request.
func TestPinsPromotionKeepsActiveSessions(t *testing.T) {
	r := newRig(t, named(map[string]float64{"stable": 95, "canary": 5}, "stable", "canary"))
	const canary = 1
	old := hashes(20_000, 1)
	before := r.routeAll(old)

	r.clk.advance(time.Second)
	r.set(map[string]float64{"stable": 75, "canary": 25})
	moved := 0
	for i, h := range old {
		if before[i].Cell != canary && r.view.Table().Pick(h) == canary {
			moved++
		}
	}
	if moved < 3000 {
		t.Fatalf("only %d of %d keys move under the new weights; the test needs a real promotion", moved, len(old))
	}

	// Active sessions keep requesting every 4 minutes for 20 minutes.
	for step := range 6 {
		r.clk.advance(4 * time.Minute)
		pinned := 0
		for i, d := range r.routeAll(old) {
			if d.Cell != before[i].Cell {
				t.Fatalf("step %d: key %d moved %d → %d during its session", step, i, before[i].Cell, d.Cell)
			}
			if d.Pinned {
				pinned++
			}
		}
		if pinned != moved {
			t.Fatalf("step %d: %d pinned, want %d", step, pinned, moved)
		}
	}

	// New keys follow the current weights, but for the rare one whose
	// 12-bit tag collides with an active key of its bucket that the table
	// now sends elsewhere (expected < 1 here; see Pins).
	fresh := r.routeAll(hashes(20_000, 2))
	onCanary, collided := 0, 0
	for _, d := range fresh {
		if d.Pinned {
			collided++
		}
		if d.Cell == canary {
			onCanary++
		}
	}
	t.Logf("%d of %d new keys pinned by a tag collision", collided, len(fresh))
	if collided > 3 {
		t.Fatalf("%d new keys pinned", collided)
	}
	if share := float64(onCanary) / float64(len(fresh)); share < 0.24 || share > 0.26 {
		t.Fatalf("new keys: canary share %.3f, want 0.25", share)
	}

	// Idle past pin_idle: every key now follows the table.
	r.clk.advance(testIdle + time.Second)
	for i, d := range r.routeAll(old) {
		if want := r.view.Table().Pick(old[i]); d.Cell != want || d.Pinned {
			t.Fatalf("key %d after idling: cell %d pinned=%v, want %d unpinned", i, d.Cell, d.Pinned, want)
		}
	}
}

// TestPinsSurviveDroppedSets: a pin whose cache Set was lost (ristretto
// drops Sets under contention) is made again from the slot.
func TestPinsSurviveDroppedSets(t *testing.T) {
	r := newRig(t, named(map[string]float64{"stable": 95, "canary": 5}, "stable", "canary"))
	hs := hashes(5000, 3)
	before := r.routeAll(hs)
	r.clk.advance(time.Second)
	r.set(map[string]float64{"stable": 75, "canary": 25})
	r.routeAll(hs)
	r.pins.Wait()
	r.pins.cache.Clear()
	r.clk.advance(time.Minute)
	for i, d := range r.routeAll(hs) {
		if d.Cell != before[i].Cell {
			t.Fatalf("key %d moved after its pin was dropped from the cache", i)
		}
	}
}

// TestPinsRevertMovesSessionsBack: sessions on the canary (moved there when
// idle, or new after the promotion) and sessions pinned to a cell that is
// then reverted return to the table's pick on their very next request.
func TestPinsRevertMovesSessionsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revert func(r *rig)
	}{
		{"step back (classified)", func(r *rig) { r.set(map[string]float64{"stable": 95, "canary": 5}) }},
		{"to zero", func(r *rig) { r.set(map[string]float64{"stable": 100, "canary": 0}) }},
		{"explicit", func(r *rig) { r.revert(map[string]float64{"stable": 95, "canary": 5}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, named(map[string]float64{"stable": 95, "canary": 5}, "stable", "canary"))
			r.set(map[string]float64{"stable": 75, "canary": 25})
			hs := hashes(20_000, 4)
			r.routeAll(hs) // new sessions, a quarter on the canary
			r.clk.advance(time.Second)
			tc.revert(r)
			r.clk.advance(time.Second)
			for i, d := range r.routeAll(hs) {
				if want := r.view.Table().Pick(hs[i]); d.Cell != want {
					t.Fatalf("key %d stayed on cell %d after the revert, want %d", i, d.Cell, want)
				}
			}
		})
	}
}

// TestPinsToRevertedCellDropped: pins held to a cell die on the swap that
// reverts it or sets its weight to 0. The pins to the old canary come from
// a second rollout after the first completed.
func TestPinsToRevertedCellDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    map[string]float64
		rev  bool
	}{
		{"weight 0", map[string]float64{"v1": 0, "v2": 0, "v3": 100}, false},
		{"revert", map[string]float64{"v1": 0, "v2": 30, "v3": 70}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, named(map[string]float64{"v1": 100}, "v1", "v2", "v3"))
			r.set(map[string]float64{"v1": 50, "v2": 50})
			r.set(map[string]float64{"v1": 0, "v2": 100}) // v2 complete
			hs := hashes(10_000, 5)
			r.routeAll(hs) // all on v2
			r.clk.advance(time.Second)
			r.set(map[string]float64{"v2": 60, "v3": 40}) // promote v3: movers pinned to v2
			pinned := 0
			for _, d := range r.routeAll(hs) {
				if d.Pinned {
					pinned++
					if r.view.Table().Cell(d.Cell).Name != "v2" {
						t.Fatalf("pinned to %s, want v2", r.view.Table().Cell(d.Cell).Name)
					}
				}
			}
			if pinned < 2000 {
				t.Fatalf("%d pins to v2, want the ~40 %% that moved", pinned)
			}
			r.pins.Wait()
			if n := r.view.Counts(r.clk.nano())[1]; n != int64(pinned) {
				t.Fatalf("Counts: %d pins to v2, want %d", n, pinned)
			}
			r.clk.advance(time.Second)
			r.swap(tc.w, tc.rev)
			for i, d := range r.routeAll(hs) {
				if d.Pinned || d.Cell != r.view.Table().Pick(hs[i]) {
					t.Fatalf("key %d: %+v after reverting v2, want its pick %d", i, d, r.view.Table().Pick(hs[i]))
				}
			}
			if n := r.view.Counts(r.clk.nano())[1]; n != 0 {
				t.Fatalf("Counts after revert: %d pins to v2", n)
			}
		})
	}
}

// TestClassify checks which changes count as reverts.
func TestClassify(t *testing.T) {
	cells := named(map[string]float64{"a": 50, "b": 50}, "a", "b", "c")
	for _, tc := range []struct {
		name         string
		steps        []map[string]float64
		wantPinnable []bool
		wantRising   []bool
	}{
		{"canary step", []map[string]float64{{"a": 45, "b": 45, "c": 10}}, []bool{true, true, true}, []bool{false, false, true}},
		{"canary ramp", []map[string]float64{{"a": 45, "b": 45, "c": 10}, {"a": 40, "b": 40, "c": 20}}, []bool{true, true, true}, []bool{false, false, true}},
		{"step back", []map[string]float64{{"a": 40, "b": 40, "c": 20}, {"a": 45, "b": 45, "c": 10}}, []bool{true, true, false}, []bool{false, false, false}},
		{"revert to 0", []map[string]float64{{"a": 40, "b": 40, "c": 20}, {"a": 50, "b": 50, "c": 0}}, []bool{true, true, false}, []bool{false, false, false}},
		{"revert then new rollout", []map[string]float64{{"c": 20}, {"c": 0}, {"c": 10}}, []bool{true, true, true}, []bool{false, false, true}},
		{"complete then next rollout", []map[string]float64{{"a": 0, "b": 0, "c": 100}, {"a": 10, "c": 90}}, []bool{true, false, true}, []bool{true, false, false}},
		{"rolling wave", []map[string]float64{{"a": 0, "c": 50}}, []bool{false, true, true}, []bool{false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, cells)
			for _, w := range tc.steps {
				r.set(w)
			}
			for i := range cells {
				if r.view.pinnable[i] != tc.wantPinnable[i] || r.pins.rising[i] != tc.wantRising[i] {
					t.Errorf("cell %s: pinnable %v rising %v, want %v %v", cells[i].Name,
						r.view.pinnable[i], r.pins.rising[i], tc.wantPinnable[i], tc.wantRising[i])
				}
			}
		})
	}
}

// TestPinsLayoutChangeForgets: a new cell list drops every pin.
func TestPinsLayoutChangeForgets(t *testing.T) {
	r := newRig(t, named(map[string]float64{"a": 95, "b": 5}, "a", "b"))
	hs := hashes(2000, 6)
	r.routeAll(hs)
	r.set(map[string]float64{"a": 75, "b": 25})
	r.routeAll(hs)
	r.view = r.pins.Swap(r.view, NewTable(testSeed, named(map[string]float64{"b": 25, "a": 75}, "b", "a")), false)
	for i, d := range r.routeAll(hs) {
		if d.Pinned || d.Cell != r.view.Table().Pick(hs[i]) {
			t.Fatalf("key %d kept a pin across a layout change", i)
		}
	}
}

// TestPinClaim: a valid claim routes to its cell; an expired one, one to a
// reverted cell or one made before a revert does not.
func TestPinClaim(t *testing.T) {
	r := newRig(t, named(map[string]float64{"stable": 75, "canary": 25}, "stable", "canary"))
	var h uint64
	for h = 1; r.view.Table().Pick(h) != 1; h++ {
	}
	now := r.clk.nano()
	claim := PinClaim{Cell: 0, AssignedAt: now - int64(time.Minute), SeenAt: now - int64(time.Minute)}
	if d := r.view.Route(h, now, claim); d.Cell != 0 || !d.Pinned {
		t.Fatalf("valid claim: %+v", d)
	}
	stale := PinClaim{Cell: 0, AssignedAt: now - int64(time.Hour), SeenAt: now - int64(testIdle) - 1}
	if d := r.view.Route(h^1<<63, now, stale); d.Pinned {
		t.Fatalf("expired claim honoured: %+v", d)
	}
	r.clk.advance(time.Second)
	r.set(map[string]float64{"stable": 0, "canary": 25})
	if d := r.view.Route(h, r.clk.nano(), claim); d.Cell != 1 || d.Pinned {
		t.Fatalf("claim to a cell at weight 0 honoured: %+v", d)
	}
}

// TestPinFloodMemory floods the pin cache with 10⁶ distinct pins and
// measures the heap: table and cache together stay within MaxBytes.
func TestPinFloodMemory(t *testing.T) {
	const budget = 32 << 20
	const flood = 1_000_000
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	clk := newFakeClock()
	p, err := NewPins(PinConfig{MaxBytes: budget, Idle: testIdle, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	v := p.Swap(nil, NewTable(testSeed, cellsOf(1, 1)), false)
	for i := range uint64(flood) {
		v.newPin(mix64(i), int(i&1), clk.nano())
	}
	p.Wait()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	used := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	held := p.cache.MaxCost() - p.cache.RemainingCost()
	t.Logf("budget %d B, heap growth %d B (%.1f%%), slots %d, pins held %d of capacity %d, %.0f B/pin beyond slots",
		budget, used, 100*float64(used)/budget, p.Slots(), held/pinCost, p.Capacity(),
		float64(used-int64(p.Slots())*slotSize)/float64(held/pinCost))
	if held < p.cache.MaxCost()/2 {
		t.Fatalf("cache holds %d of %d: the flood did not fill it", held, p.cache.MaxCost())
	}
	if used > budget {
		t.Fatalf("heap grew %d B, over the %d B pin budget", used, budget)
	}
}
