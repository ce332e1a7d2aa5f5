package rollout

import (
	"slices"
	"testing"
)

// pubsOf returns what r published so far.
func pubsOf(r *rig) []Document {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	return slices.Clone(r.pubs)
}

// balCalls is how many times r's balancer was told weights.
func balCalls(r *rig) int {
	r.bal.mu.Lock()
	defer r.bal.mu.Unlock()
	return r.bal.calls
}

// TestManualWeightIsADocument: a manual weight outside rollouts is journalled
// and published as the next version of the cell's manual document, not a
// second kind of state, and is not listed as a rollout.
func TestManualWeightIsADocument(t *testing.T) {
	r := newRig(t, Options{})
	must(t, r.c.SetWeight("canary-1", 30, "admin:ops", "first"))
	must(t, r.c.SetWeight("canary-1", 40, "admin:ops", "second"))
	pubs := pubsOf(r)
	if len(pubs) != 2 || pubs[1].ID != "manual-canary-1" || pubs[1].Generation != 2 || pubs[1].Weights["canary-1"] != 40 {
		t.Fatalf("published %+v", pubs)
	}
	if pubs[1].Epoch <= pubs[0].Epoch {
		t.Fatalf("epochs %d then %d: the cell clock must grow", pubs[0].Epoch, pubs[1].Epoch)
	}
	if vs, _ := r.c.Rollouts(); len(vs) != 0 {
		t.Fatalf("a manual weight listed as a rollout: %+v", vs)
	}
	if rel, _ := r.c.Releases(); len(rel) != 0 {
		t.Fatalf("a manual weight in the release catalog: %+v", rel)
	}
}

// TestCellClockOrdersDocuments: node 1 sets canary-1 by hand, then
// promotes a rollout over it. A node that hears of both, in either order,
// ends at the rollout's weights; and a node restarted from its journal
// applies neither again (no event, no weight change) when peers resend them.
func TestCellClockOrdersDocuments(t *testing.T) {
	r1 := newRig(t, Options{})
	must(t, r1.c.SetWeight("canary-1", 30, "admin:ops", "before the rollout"))
	id := r1.start(canaryPlan())
	must(t, r1.c.PromoteNow(id, "admin:ops")) // 5 %
	for range 4 {
		must(t, r1.c.PromoteNow(id, "admin:ops"))
	}
	if v := r1.view(id); v.Status != StatusPromoted {
		t.Fatalf("rollout %s", v.Status)
	}
	want := r1.c.Weights()
	pubs := pubsOf(r1)
	manual, last := pubs[0], pubs[len(pubs)-1]
	if manual.ID != "manual-canary-1" || last.ID != id {
		t.Fatalf("published %s … %s", manual.ID, last.ID)
	}
	for _, order := range [][]Document{{manual, last}, {last, manual}} {
		r := newRig(t, Options{})
		for _, d := range order {
			if _, err := r.c.ApplyRemote(d, "node-1"); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.c.Weights(); got["canary-1"] != want["canary-1"] || got["stable-a"] != want["stable-a"] {
			t.Fatalf("order %s, %s: weights %v, want %v", order[0].ID, order[1].ID, got, want)
		}
		// Restart from the journal; the peer resends everything.
		must(t, r.c.Close())
		r.open(Options{Cells: testCells(), NoSync: true})
		before, _ := r.c.Audit(0, 0)
		applied := balCalls(r)
		for _, d := range pubs {
			if news, err := r.c.ApplyRemote(d, "node-1"); news || err != nil {
				t.Fatalf("after a restart %s generation %d was applied again (news %v, err %v)", d.ID, d.Generation, news, err)
			}
		}
		after, _ := r.c.Audit(0, 0)
		if len(after) != len(before) || balCalls(r) != applied {
			t.Fatalf("after a restart: %d new events, %d new balancer calls", len(after)-len(before), balCalls(r)-applied)
		}
		if got := r.c.Weights(); got["canary-1"] != want["canary-1"] {
			t.Fatalf("after a restart canary-1 is %g, want %g", got["canary-1"], want["canary-1"])
		}
	}
	// A later manual change wins over the promoted rollout everywhere.
	must(t, r1.c.SetWeight("canary-1", 7, "admin:ops", "after the rollout"))
	later := pubsOf(r1)
	r := newRig(t, Options{})
	for _, d := range []Document{later[len(later)-1], last, manual} {
		if _, err := r.c.ApplyRemote(d, "node-1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.c.Weights()["canary-1"]; got != 7 {
		t.Fatalf("the latest manual change lost: canary-1 %g", got)
	}
}

// TestJournalCheckReadsCellRecords: `cellgate journal check` reads the cell
// records the cell clock writes.
func TestJournalCheckReadsCellRecords(t *testing.T) {
	r := newRig(t, Options{})
	must(t, r.c.SetWeight("canary-1", 30, "admin:ops", ""))
	must(t, r.c.Close())
	rep, err := CheckJournal(r.path)
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %v", err, rep.Problems)
	}
}
