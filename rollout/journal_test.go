package rollout

import (
	"errors"
	"testing"
	"time"
)

func TestReopenResumesActiveRollout(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	r.judge.set(StateHealthy, 1000)
	r.tick(time.Second)
	r.tick(10 * time.Second) // step 5 %
	before := r.view(id)
	must(t, r.c.Close())

	r.bal = &fakeBalancer{} // a fresh balancer, as after a process restart
	r.open(Options{Cells: testCells(), NoSync: true})
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 5, "stable-a": 47.5, "stable-b": 47.5, "blue-1": 100})
	after := r.view(id)
	if after.Generation != before.Generation || after.StepPercent != 5 || len(after.Decisions) != len(before.Decisions) {
		t.Fatalf("resumed %+v, want %+v", after, before)
	}
	r.tick(10 * time.Second)
	if got := r.view(id).StepPercent; got != 25 {
		t.Fatalf("after resume the plan did not go on: step %g", got)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	r := newRig(t, Options{})
	start := time.Now()
	_, err := Open(r.path, Options{LockTimeout: 100 * time.Millisecond}, Hooks{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("second open took %s", el)
	}
	t.Logf("second open: %v", err)
}

func TestNoAcknowledgedEventLost(t *testing.T) {
	r := newRig(t, Options{})
	var acked []uint64
	r.c.hooks.Committed = func(ev Event) { acked = append(acked, ev.Seq) }
	for i := range 50 {
		must(t, r.c.SetWeight("blue-2", float64(i), "admin:t", ""))
	}
	must(t, r.c.Close())
	j, err := OpenJournal(r.path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	evs, err := j.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[uint64]bool{}
	for i, ev := range evs {
		have[ev.Seq] = true
		if ev.Seq != uint64(i+1) {
			t.Fatalf("audit seq %d at position %d: the log has a gap", ev.Seq, i)
		}
	}
	for _, s := range acked {
		if !have[s] {
			t.Fatalf("acknowledged event %d missing", s)
		}
	}
	if len(acked) != 50 {
		t.Fatalf("%d acks", len(acked))
	}
	page, _ := j.Audit(10, 5)
	if len(page) != 5 || page[0].Seq != 11 {
		t.Fatalf("paging: %+v", page)
	}
	cw, _ := j.CellWeights()
	if cw["blue-2"] != 49 {
		t.Fatalf("cell weights %v", cw)
	}
}

func TestJournalKeepsPromotionAcrossRestart(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	must(t, r.c.PromoteNow(id, "admin:t"))
	for r.view(id).Status != StatusPromoted {
		must(t, r.c.PromoteNow(id, "admin:t"))
	}
	must(t, r.c.Close())
	r.bal = &fakeBalancer{}
	r.open(Options{Cells: testCells(), NoSync: true}) // the config still says canary-1 = 0
	assertWeights(t, r.bal.weights(), Weights{"canary-1": 100, "stable-a": 0})
}

func TestSyncCells(t *testing.T) {
	r := newRig(t, Options{})
	id := r.start(canaryPlan())
	cells := testCells()
	cells["blue-1"] = 60   // edited in the config, not under rollout: taken
	cells["stable-a"] = 10 // under rollout: the rollout keeps its weights
	cells["new"] = 5
	must(t, r.c.SyncCells(cells, "config"))
	assertWeights(t, r.c.Weights(), Weights{"blue-1": 60, "stable-a": 50, "new": 5})
	assertWeights(t, r.bal.weights(), Weights{"blue-1": 60, "new": 5})
	delete(cells, "canary-1") // removing a rollout's cell aborts it
	must(t, r.c.SyncCells(cells, "config"))
	if v := r.view(id); v.Status != StatusAborted {
		t.Fatalf("status %s", v.Status)
	}
	if _, ok := r.c.Weights()["canary-1"]; ok {
		t.Fatal("removed cell still known")
	}
}
