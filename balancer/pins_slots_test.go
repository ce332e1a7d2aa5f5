package balancer

import (
	"testing"
	"time"
)

// TestSlotAge checks the modular age of 12-bit slot times: exact below
// 2048 units across the wrap, 0 for an entry a concurrent request wrote
// with a later clock.
func TestSlotAge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		t, at   uint64 // absolute units: now, and when the entry was written
		wantAge uint64
	}{
		{"same unit", 100, 100, 0},
		{"older", 100, 40, 60},
		{"across the wrap", 4096 + 5, 4090, 11},
		{"many wraps later", 9*4096 + 3, 9*4096 - 2, 5},
		{"later clock", 100, 102, 0},
		{"later clock across the wrap", 4095, 4096 + 1, 0},
		{"horizon", 5000, 5000 - 2047, 2047},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := slotEntry(0xabc, 3, tc.at)
			if got := age(tc.t, e); got != tc.wantAge {
				t.Fatalf("age = %d, want %d", got, tc.wantAge)
			}
			if slotCell(e) != 3 || e>>slotTagShift != 0xabc {
				t.Fatalf("entry %#x decodes to cell %d tag %#x", e, slotCell(e), e>>slotTagShift)
			}
		})
	}
}

// TestSlotUnits: pin_idle spans 64–127 slot units, never below ~1 ms.
func TestSlotUnits(t *testing.T) {
	for _, idle := range []time.Duration{time.Millisecond, time.Second, 5 * time.Minute, 24 * time.Hour} {
		p, err := NewPins(PinConfig{MaxBytes: MinPinMemory, Idle: idle})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		if p.unitShift < slotMinUnitShift {
			t.Errorf("idle %v: unit 2^%d ns, below 2^%d", idle, p.unitShift, slotMinUnitShift)
		}
		if p.unitShift > slotMinUnitShift && (p.idleUnits < 64 || p.idleUnits > 127) {
			t.Errorf("idle %v: %d units, want 64–127", idle, p.idleUnits)
		}
		if p.refresh < 1 {
			t.Errorf("idle %v: refresh %d units", idle, p.refresh)
		}
	}
}

// movers returns keys the table of r picks on cell from before promote and
// elsewhere after.
func movers(r *rig, hs []uint64, w map[string]float64) []uint64 {
	next := r.view.Table().WithWeights(w)
	var out []uint64
	for _, h := range hs {
		if r.view.Table().Pick(h) != next.Pick(h) {
			out = append(out, h)
		}
	}
	return out
}

// TestPinsSweepStopsWrap: slot times wrap after 4096 units. An entry silent
// that long would read as recent; the sweep clears it once idle, so a key
// returning after many idles into a promotion follows the table.
func TestPinsSweepStopsWrap(t *testing.T) {
	for _, sweep := range []bool{true, false} {
		r := newRig(t, named(map[string]float64{"stable": 95, "canary": 5}, "stable", "canary"))
		promote := map[string]float64{"stable": 75, "canary": 25}
		hs := movers(r, hashes(2000, 6), promote)
		r.routeAll(hs)
		r.clk.advance(2 * testIdle)
		if sweep {
			r.pins.sweep(r.pins.units(r.clk.nano()))
		}
		// Exactly one wrap after the visit, minus the two idles above.
		r.clk.advance(time.Duration(int64(slotTimeMask+1)<<r.pins.unitShift) - 2*testIdle)
		r.set(promote)
		pinned := 0
		for _, d := range r.routeAll(hs) {
			if d.Pinned {
				pinned++
			}
		}
		if sweep && pinned != 0 {
			t.Fatalf("swept: %d of %d keys silent for 4096 units pinned", pinned, len(hs))
		}
		if !sweep && pinned == 0 {
			t.Fatalf("unswept: no key pinned; the test no longer shows the wrap it guards against")
		}
	}
}

// TestPinsSweepKeepsActive: the sweep clears idle entries and only those.
func TestPinsSweepKeepsActive(t *testing.T) {
	r := newRig(t, named(map[string]float64{"a": 1, "b": 1}, "a", "b"))
	old, recent := hashes(1000, 7), hashes(1000, 8)
	r.routeAll(old)
	r.clk.advance(testIdle / 2)
	r.routeAll(recent)
	r.clk.advance(testIdle/2 + time.Minute)
	r.pins.sweep(r.pins.units(r.clk.nano()))
	for _, tc := range []struct {
		name string
		hs   []uint64
		want bool
	}{{"idle", old, false}, {"active", recent, true}} {
		kept := 0
		for _, h := range tc.hs {
			ws := load(r.pins.bucket(h))
			if way, _, _ := r.view.find(&ws, slotTag(h), r.pins.units(r.clk.nano())); way >= 0 {
				kept++
			}
		}
		if tc.want && kept < len(tc.hs)*99/100 || !tc.want && kept > len(tc.hs)/100 {
			t.Errorf("%s keys: %d of %d kept after the sweep", tc.name, kept, len(tc.hs))
		}
	}
}

// TestPinsEvictedWhilePinned: a pinned key pushed out of its bucket by four
// newer keys keeps its pin, read from the cache because the bucket is full
// of active keys.
func TestPinsEvictedWhilePinned(t *testing.T) {
	r := newRig(t, named(map[string]float64{"stable": 95, "canary": 5}, "stable", "canary"))
	promote := map[string]float64{"stable": 75, "canary": 25}
	k := movers(r, hashes(2000, 9), promote)[0]
	before := r.view.Route(k, r.clk.nano(), NoClaim).Cell
	r.clk.advance(time.Second)
	r.set(promote)
	if d := r.view.Route(k, r.clk.nano(), NoClaim); !d.Pinned || d.Cell != before {
		t.Fatalf("mover not pinned: %+v, want cell %d", d, before)
	}
	r.pins.Wait()
	r.clk.advance(time.Second)
	low := k & r.pins.bucketMask
	for i := range uint64(4) { // same bucket, other tags
		h := low | uint64((slotTag(k)+1+uint32(i))&0xfff)<<52 | (i+1)<<40
		r.view.Route(h, r.clk.nano(), NoClaim)
	}
	ws := load(r.pins.bucket(k))
	if way, _, full := r.view.find(&ws, slotTag(k), r.pins.units(r.clk.nano())); way >= 0 || !full {
		t.Fatalf("pinned key still in its bucket (way %d) or bucket not full (%v): the test needs an eviction", way, full)
	}
	if d := r.view.Route(k, r.clk.nano(), NoClaim); !d.Pinned || d.Cell != before {
		t.Fatalf("evicted key: %+v, want pinned to %d", d, before)
	}
}
