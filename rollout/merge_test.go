package rollout

import (
	"errors"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	doc := func(gen uint64, s Status, step int) Document {
		return Document{ID: "r1", Generation: gen, Status: s, Step: step}
	}
	tests := []struct {
		name          string
		local, remote Document
		wantRemote    bool
	}{
		{"higher generation wins", doc(3, StatusProgressing, 2), doc(4, StatusProgressing, 3), true},
		{"lower generation loses", doc(4, StatusProgressing, 2), doc(3, StatusPaused, 1), false},
		{"revert beats promotion in a generation", doc(5, StatusProgressing, 3), doc(5, StatusRolledBack, 2), true},
		{"abort beats rollback", doc(5, StatusRolledBack, 2), doc(5, StatusAborted, 2), true},
		{"promotion loses to revert", doc(5, StatusRolledBack, 2), doc(5, StatusPromoted, 4), false},
		{"a revert is final across generations", doc(9, StatusProgressing, 4), doc(6, StatusRolledBack, 1), true},
		{"a later promotion never undoes a revert", doc(6, StatusAborted, 1), doc(9, StatusPromoted, 4), false},
		{"pause beats progress", doc(5, StatusProgressing, 2), doc(5, StatusPaused, 2), true},
		{"lower step wins", doc(5, StatusProgressing, 3), doc(5, StatusProgressing, 2), true},
		{"identical keeps local", doc(5, StatusProgressing, 2), doc(5, StatusProgressing, 2), false},
		{"no local takes remote", Document{}, doc(1, StatusProgressing, -1), true},
		{"other rollout is ignored", doc(1, StatusProgressing, 0), Document{ID: "r2", Generation: 9}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Merge(tc.local, tc.remote)
			want := tc.local
			if tc.wantRemote {
				want = tc.remote
			}
			if got.ID != want.ID || got.Generation != want.Generation || got.Status != want.Status || got.Step != want.Step {
				t.Fatalf("Merge = %+v, want %+v", got, want)
			}
			if tc.local.ID == tc.remote.ID && tc.local.ID != "" {
				back := Merge(tc.remote, tc.local)
				if back.Generation != got.Generation || back.Status != got.Status || back.Step != got.Step {
					t.Fatalf("not symmetric: %+v vs %+v", back, got)
				}
			}
		})
	}
	// Same generation, status and step, different content: deterministic.
	a, b := doc(5, StatusProgressing, 2), doc(5, StatusProgressing, 2)
	a.Weights, b.Weights = Weights{"c": 1}, Weights{"c": 2}
	if Merge(a, b).Weights["c"] != Merge(b, a).Weights["c"] {
		t.Fatal("tie-break is not symmetric")
	}
}

func TestApplyRemote(t *testing.T) {
	r1, r2 := newRig(t, Options{}), newRig(t, Options{})
	id := r1.start(canaryPlan())
	r1.judge.set(StateHealthy, 1000)
	r1.tick(time.Second)
	r1.pubMu.Lock()
	pubs := append([]Document(nil), r1.pubs...)
	r1.pubMu.Unlock()
	for _, d := range pubs {
		news, err := r2.c.ApplyRemote(d, "node-1")
		must(t, err)
		if !news {
			t.Fatalf("generation %d from node 1 was not news to node 2", d.Generation)
		}
	}
	assertWeights(t, r2.bal.weights(), Weights{"canary-1": 1, "stable-a": 49.5})
	v := r2.view(id)
	if v.Generation != 2 || v.Decisions[len(v.Decisions)-1].Actor != "peer:node-1" {
		t.Fatalf("remote view %+v", v)
	}
	// A stale copy changes nothing and is not news.
	if news, err := r2.c.ApplyRemote(pubs[0], "node-1"); err != nil || news {
		t.Fatalf("stale copy: news %v, err %v", news, err)
	}
	if got := r2.view(id); got.Generation != 2 || len(got.Decisions) != 2 {
		t.Fatalf("stale document applied: gen %d, %d decisions", got.Generation, len(got.Decisions))
	}
	// Node 2 reverts locally; its revert wins on node 1 even after node 1 promoted further.
	r2.judge.set(StateFailing, 1000)
	r2.tick(time.Second)
	r1.tick(10 * time.Second) // node 1 enters 5 % at the same generation as node 2's revert
	r1.tick(10 * time.Second) // and 25 %, a higher generation
	r2.pubMu.Lock()
	revert := r2.pubs[len(r2.pubs)-1]
	r2.pubMu.Unlock()
	_, err := r1.c.ApplyRemote(revert, "node-2")
	must(t, err)
	if v := r1.view(id); v.Status != StatusRolledBack {
		t.Fatalf("node 1 status %s after the peer's revert", v.Status)
	}
	assertWeights(t, r1.bal.weights(), Weights{"canary-1": 0, "stable-a": 50})
	// Invalid documents are refused.
	if _, err := r1.c.ApplyRemote(Document{ID: "x"}, "n"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid: %v", err)
	}
}

func TestApplyRemoteRivalRollouts(t *testing.T) {
	r1, r2 := newRig(t, Options{}), newRig(t, Options{})
	r2.clock.Advance(time.Second) // node 2 starts later
	p2 := canaryPlan()
	p2.Name = "late"
	id1 := r1.start(canaryPlan())
	id2 := r2.start(p2)
	r2.pubMu.Lock()
	late := r2.pubs[0]
	r2.pubMu.Unlock()
	if _, err := r1.c.ApplyRemote(late, "node-2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("later rival: %v", err)
	}
	r1.pubMu.Lock()
	early := r1.pubs[0]
	r1.pubMu.Unlock()
	_, err := r2.c.ApplyRemote(early, "node-1")
	must(t, err)
	if v := r2.view(id2); v.Status != StatusAborted {
		t.Fatalf("later local rival is %s", v.Status)
	}
	if got := r2.c.Active(); len(got) != 1 || got[0] != id1 {
		t.Fatalf("active on node 2: %v", got)
	}
}
