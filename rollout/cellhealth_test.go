package rollout

import "testing"

// TestRecordCellHealth: a cell going down and up is journaled as two audit
// events and changes no weight (nothing is applied to the balancer).
func TestRecordCellHealth(t *testing.T) {
	r := newRig(t, Options{})
	before := r.c.Weights()
	applied := len(r.bal.weights())
	if err := r.c.RecordCellHealth("stable-a", false, "health:node-1", "no endpoint in rotation"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.RecordCellHealth("stable-a", true, "health:node-1", "endpoint back"); err != nil {
		t.Fatal(err)
	}
	evs, err := r.c.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Action+"/"+ev.Actor)
		if len(ev.Before) > 0 || len(ev.After) > 0 {
			t.Errorf("event %s carries weights %v → %v", ev.Action, ev.Before, ev.After)
		}
	}
	if len(got) != 2 || got[0] != "cell_down/health:node-1" || got[1] != "cell_up/health:node-1" {
		t.Fatalf("audit %v, want cell_down then cell_up by health:node-1", got)
	}
	assertWeights(t, r.c.Weights(), before)
	if len(r.bal.weights()) != applied {
		t.Fatal("recording cell health applied weights")
	}
	if err := r.c.RecordCellHealth("nope", false, "health:node-1", ""); err == nil {
		t.Fatal("unknown cell accepted")
	}
}

// TestActiveTargets lists the running rollouts' targets, and none once
// they end.
func TestActiveTargets(t *testing.T) {
	r := newRig(t, Options{})
	if got := r.c.ActiveTargets(); len(got) != 0 {
		t.Fatalf("no rollout: %v", got)
	}
	id := r.start(canaryPlan())
	if got := r.c.ActiveTargets(); len(got) != 1 || got[0] != "canary-1" {
		t.Fatalf("running canary: %v", got)
	}
	if err := r.c.Abort(id, "admin:test", "done"); err != nil {
		t.Fatal(err)
	}
	if got := r.c.ActiveTargets(); len(got) != 0 {
		t.Fatalf("after abort: %v", got)
	}
}
