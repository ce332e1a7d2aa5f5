package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/rollout"
)

// shortFlags run a whole scenario in a few seconds: a fast tick, a short
// bake and small samples. Neither test here is about latency, and under
// the race detector on a loaded CI machine every request through the
// in-process node can take longer than the production 300 ms threshold,
// which reverted a healthy canary before its error fault (make test on a
// fresh clone): the threshold is raised out of the way.
var shortFlags = []string{"-rate", "800", "-keys", "2000", "-tick", "100ms", "-bake", "300ms",
	"-min-requests", "10", "-warmup", "1s", "-tail", "1s", "-timeout", "30s", "-latency-threshold", "10s", "-q"}

// TestRolloutPromotes: a healthy canary is promoted step by step, no request
// fails, every key stays sticky, and the report's phases and decisions say
// so.
func TestRolloutPromotes(t *testing.T) {
	if raceEnabled {
		t.Skip("a seconds-scale scenario: runs without the race detector in make test (see race_on_test.go)")
	}
	o, _, err := parseFlags(shortFlags, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		o.Progress = tWriter{t}
	}
	rep, err := Rollout(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())
	if !rep.OK || rep.Status != rollout.StatusPromoted || rep.Expected != rollout.StatusPromoted {
		t.Fatalf("ok %v, status %s (expected %s), problems %v", rep.OK, rep.Status, rep.Expected, rep.Problems)
	}
	if rep.Failed != 0 || rep.Requests < 1000 {
		t.Errorf("%d of %d requests failed, want 0 of more than 1000", rep.Failed, rep.Requests)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		if p.Requests > 0 && (p.P50 <= 0 || p.P99 < p.P50) {
			t.Errorf("phase %s: p50 %v, p99 %v", p.Name, p.P50, p.P99)
		}
	}
	want := "baseline,step 1 (1%),step 2 (5%),step 3 (25%),step 4 (50%),step 5 (100%),promoted"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("phases %s, want %s", got, want)
	}
	last := rep.Phases[len(rep.Phases)-1]
	if last.CanaryShare != 100 || rep.Phases[0].CanaryShare != 0 {
		t.Errorf("canary share %.1f%% before, %.1f%% after the promotion; want 0 and 100", rep.Phases[0].CanaryShare, last.CanaryShare)
	}
	a := rep.Audit
	if !a.Clean || a.Keys < 400 || a.KeysWithHome == 0 || a.MovedToCanary < a.KeysWithHome/2 || a.CheckedAfterRevert != 0 {
		t.Errorf("audit %+v", a)
	}
	if rep.Injected != nil {
		t.Errorf("fault result without a fault: %+v", rep.Injected)
	}
}

// TestRolloutRevertsOnErrors runs the command line with -fault errors and
// -o json: the canary breaks at 25 %, is reverted within seconds, and every
// key is back on the cell it had before the rollout.
func TestRolloutRevertsOnErrors(t *testing.T) {
	if raceEnabled {
		t.Skip("a seconds-scale scenario: runs without the race detector in make test (see race_on_test.go)")
	}
	var out, errOut bytes.Buffer
	code := Main(append([]string{"rollout", "-fault", "errors", "-o", "json"}, shortFlags...), &out, &errOut)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stderr %s, json: %v\n%s", code, errOut.String(), err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	if code != 0 || !rep.OK || rep.Status != rollout.StatusRolledBack || rep.Fault != FaultErrors {
		t.Fatalf("exit %d, ok %v, status %s, problems %v", code, rep.OK, rep.Status, rep.Problems)
	}
	f := rep.Injected
	if f == nil || !f.Reverted || f.Step != 3 || f.Percent != 25 {
		t.Fatalf("fault result %+v", f)
	}
	if f.RevertAfter <= 0 || f.RevertAfter > 5*time.Second || f.DecidedAfter <= 0 || f.DecidedAfter > f.RevertAfter {
		t.Errorf("revert after %v, decided after %v", f.RevertAfter, f.DecidedAfter)
	}
	if f.FailedAfter == 0 || f.FailedAfter > f.RequestsAfter || f.Reason == "" {
		t.Errorf("failed after onset %d of %d, reason %q", f.FailedAfter, f.RequestsAfter, f.Reason)
	}
	var names []string
	var failedInSteps int64
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		if p.Step > 0 && p.Name != "fault" {
			failedInSteps += p.Failed
		}
	}
	want := "baseline,step 1 (1%),step 2 (5%),step 3 (25%),fault,after revert"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("phases %s, want %s", got, want)
	}
	after := rep.Phases[len(rep.Phases)-1]
	if failedInSteps != 0 || after.CanaryShare != 0 {
		t.Errorf("%d requests failed before the fault; canary share after the revert %.1f%%", failedInSteps, after.CanaryShare)
	}
	a := rep.Audit
	if !a.Clean || a.CheckedAfterRevert < 100 || a.RestoredExactly == 0 || a.MovedToCanary == 0 {
		t.Errorf("audit %+v", a)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
