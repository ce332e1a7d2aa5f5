package flags

import (
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
)

// TestPinsHoldSessionsThroughPromotion: with pins on, users who were
// active on a variant keep it while a promotion moves their keys into the
// ramped variant, users not seen before follow the new weights, and a
// revert puts every user back on exactly its first variant. Without pins
// the same active users move.
func TestPinsHoldSessionsThroughPromotion(t *testing.T) {
	keys := keyHashes(4000)
	active, fresh := keys[:2000], keys[2000:]
	d := Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{100, 0}, Control: "off", Boolean: true}
	for _, pinned := range []bool{true, false} {
		e := NewEngine(testSeed, nil)
		if pinned {
			e.SetPins(balancer.PinConfig{MaxBytes: balancer.MinPinMemory, Idle: time.Minute})
		}
		if err := e.SetDefs([]Def{d}, nil); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixNano()
		for _, h := range active {
			if v := e.Load().Route(0, h, now); v != 0 {
				t.Fatalf("before the rollout a key is on %d", v)
			}
		}
		if err := e.SetWeights(map[string]float64{"new-ranker=on": 100}, false); err != nil {
			t.Fatal(err)
		}
		now = time.Now().UnixNano()
		moved, freshOn := 0, 0
		for _, h := range active {
			if e.Load().Route(0, h, now) != 0 {
				moved++
			}
		}
		for _, h := range fresh {
			if e.Load().Route(0, h, now) == 1 {
				freshOn++
			}
		}
		t.Logf("pins %v: %d of %d active users moved, %d of %d new users on the promoted variant", pinned, moved, len(active), freshOn, len(fresh))
		if pinned && moved != 0 {
			t.Errorf("with pins, %d active users lost their variant in a promotion", moved)
		}
		if !pinned && moved < len(active)/3 {
			t.Errorf("without pins only %d active users followed the promotion", moved)
		}
		if freshOn < len(fresh)/3 || freshOn > 2*len(fresh)/3 {
			t.Errorf("%d of %d new users on a variant with half the weight", freshOn, len(fresh))
		}
		if err := e.SetWeights(map[string]float64{"new-ranker=on": 0}, true); err != nil {
			t.Fatal(err)
		}
		now = time.Now().UnixNano()
		for _, h := range keys {
			if v := e.Load().Route(0, h, now); v != 0 {
				t.Fatalf("pins %v: after the revert a key is still on %d", pinned, v)
			}
		}
		e.Close()
	}
}
