package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/rollout"
)

// TestDemoShort is `make demo` in its short mode: the rollout is promoted
// through every step within the run and nothing fails.
func TestDemoShort(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs a 15 s demo, without the race detector (see race_on_test.go)")
	}
	var view bytes.Buffer
	s, err := Run(context.Background(), Options{Duration: 15 * time.Second, AdminAddr: "127.0.0.1:0", View: &view})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Print(&out)
	t.Log(out.String())
	if s.Status != rollout.StatusPromoted {
		t.Fatalf("rollout %s, want promoted", s.Status)
	}
	if got := len(s.Steps); got != 5 {
		t.Errorf("entered %d steps, want 5", got)
	}
	if s.Failed != 0 || s.Requests == 0 {
		t.Errorf("%d of %d requests failed", s.Failed, s.Requests)
	}
	for _, want := range []string{"steps entered: 1% → 5% → 25% → 50% → 100%", "promoted", "requests:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if !strings.Contains(view.String(), "canary-1") {
		t.Errorf("the live view never showed the cells")
	}
}

// TestDemoFault is `make demo DEMO_FLAGS=-fault` in its short mode: the
// canary starts failing at 25 % and the controller reverts it by itself.
func TestDemoFault(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs a 15 s demo, without the race detector (see race_on_test.go)")
	}
	s, err := Run(context.Background(), Options{Duration: 15 * time.Second, Fault: true, AdminAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Print(&out)
	t.Log(out.String())
	if s.Status != rollout.StatusRolledBack {
		t.Fatalf("rollout %s, want rolled_back", s.Status)
	}
	if s.RevertedAt.IsZero() || s.FaultAt.IsZero() {
		t.Fatalf("fault at %v, reverted at %v", s.FaultAt, s.RevertedAt)
	}
	if d := s.RevertedAt.Sub(s.FaultAt); d > 5*time.Second {
		t.Errorf("revert took %v after the fault", d)
	}
	if !strings.Contains(out.String(), "reverted") {
		t.Errorf("summary does not report the revert")
	}
}
