package rollout

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashEnv names the journal file a crash-test child runs on.
const crashEnv = "ROLLOUT_CRASH_CHILD_JOURNAL"

// TestCrashChild is the child process of TestCrashRecovery: it runs
// rollouts as fast as it can on a journal, with a random fake judge and
// operator, printing "ACK <seq>" after each commit, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the crash test's child process")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnv+"_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 7))
	judge := &fakeJudge{}
	c, err := Open(path, Options{Cells: testCells(), DegradedTicks: 2}, Hooks{
		Judge:     judge.Judge,
		Apply:     func(map[string]float64, bool) error { return nil },
		Committed: func(ev Event) { fmt.Fprintf(os.Stdout, "ACK %d\n", ev.Seq) },
	})
	if err != nil {
		fmt.Fprintf(os.Stdout, "OPEN-ERROR %v\n", err)
		os.Exit(3)
	}
	fmt.Fprintln(os.Stdout, "READY")
	plans := []Plan{crashPlan("canary", StrategyCanary), crashPlan("roll", StrategyRolling)}
	for n := 0; ; n++ {
		if len(c.Active()) == 0 {
			_, _ = c.Start(plans[rng.IntN(len(plans))], "admin:crash")
		}
		states := []string{StateHealthy, StateHealthy, StateHealthy, StateInconclusive, StateDegraded, StateFailing}
		judge.set(states[rng.IntN(len(states))], 1000)
		if ids := c.Active(); len(ids) > 0 && rng.IntN(10) == 0 {
			switch rng.IntN(4) {
			case 0:
				_ = c.Pause(ids[0], "admin:crash", "")
			case 1:
				_ = c.Resume(ids[0], "admin:crash")
			case 2:
				_ = c.SetWeight("stable-a", float64(rng.IntN(100)), "admin:crash", "")
			case 3:
				_ = c.Abort(ids[0], "admin:crash", "")
			}
		}
		_ = c.Tick(time.Now())
	}
}

func crashPlan(name, strategy string) Plan {
	p := Plan{Name: name, Strategy: strategy, Bake: 0, MinRequests: 0, MaxStepPerTick: 30, Steps: []float64{1, 10, 50, 100}}
	if strategy == StrategyRolling {
		p.Targets, p.Baseline, p.Steps = []string{"green-1", "green-2"}, []string{"blue-1", "blue-2"}, []float64{50, 100}
	} else {
		p.Targets, p.Baseline = []string{"canary-1"}, []string{"stable-a", "stable-b"}
	}
	return p
}

// crashSeed replays a crash test: the seed its log printed.
var crashSeed = flag.Uint64("crash.seed", 0, "TestCrashRecovery's seed (0: from the clock); a run logs the one it used")

// TestCrashRecovery kills a child running rollouts with SIGKILL at random
// points, at least 20 times, and checks after each kill that the journal
// opens, is consistent, and holds every event the child acknowledged.
//
// The seed is logged (and settable with -crash.seed) so a failure can be
// run again: it fixes each child's judge and operator actions and when it
// is killed by ack count; the timer kill and the scheduler still vary.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash seed %d (rerun: go test ./rollout -run TestCrashRecovery -args -crash.seed=%d)", seed, seed)
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(seed, 1))
	const minRuns = 20
	budget := time.Now().Add(20 * time.Second)
	var runs, acks int
	var childSeed uint64
	defer func() {
		if t.Failed() {
			t.Logf("failed in run %d: crash seed %d, child seed %d", runs+1, seed, childSeed)
		}
	}()
	for runs < minRuns || (time.Now().Before(budget) && runs < 40) {
		if time.Now().After(budget.Add(40 * time.Second)) {
			t.Fatalf("only %d runs in a minute", runs)
		}
		childSeed = rng.Uint64()
		acked := runCrashChild(t, path, childSeed, rng)
		checkJournal(t, path, acked)
		runs++
		acks += len(acked)
	}
	if acks == 0 {
		t.Fatal("the children acknowledged nothing")
	}
	t.Logf("%d kills, %d acknowledged events, all present", runs, acks)
}

// runCrashChild starts a child, kills it after a random number of acks (or a
// random short time) and returns the acknowledged sequence numbers. The
// child's judge and operator draw from childSeed; rng picks when to kill.
func runCrashChild(t *testing.T, path string, childSeed uint64, rng *rand.Rand) []uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("%s_SEED=%d", crashEnv, childSeed))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := rng.IntN(80)
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill() }) } // SIGKILL on unix
	timer := time.AfterFunc(time.Duration(20+rng.IntN(300))*time.Millisecond, kill)
	defer timer.Stop()
	var acked []uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ACK "); ok {
			seq, err := strconv.ParseUint(rest, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			acked = append(acked, seq)
			if len(acked) >= killAfter {
				kill()
			}
		} else if strings.HasPrefix(line, "OPEN-ERROR") {
			t.Fatalf("child: %s", line)
		}
	}
	_ = cmd.Wait()
	return acked
}

// checkJournal opens the journal at path and checks it: the audit log is
// gap-free and holds every acked seq; each rollout's document matches its
// last decision; active rollouts do not overlap; the cell weights agree with
// the active documents. Then it resumes a controller on it.
func checkJournal(t *testing.T, path string, acked []uint64) {
	t.Helper()
	j, err := OpenJournal(path, 5*time.Second)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer j.Close()
	evs, err := j.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("audit gap: seq %d at position %d", ev.Seq, i)
		}
	}
	for _, s := range acked {
		if s > uint64(len(evs)) {
			t.Fatalf("acknowledged event %d missing (log ends at %d)", s, len(evs))
		}
	}
	docs, err := j.Documents()
	if err != nil {
		t.Fatal(err)
	}
	cells, err := j.CellWeights()
	if err != nil {
		t.Fatal(err)
	}
	var active []Document
	for _, d := range docs {
		if d.Manual() { // a cell's manual weight: no decisions index (manual.go)
			if !d.Status.Terminal() || d.Ended.IsZero() || len(d.Weights) != 1 {
				t.Fatalf("manual weight document %s: status %s, ended %v, weights %v", d.ID, d.Status, d.Ended, d.Weights)
			}
			continue
		}
		dec, err := j.RolloutEvents(d.ID)
		if err != nil || len(dec) == 0 {
			t.Fatalf("rollout %s: %d decisions, %v", d.ID, len(dec), err)
		}
		last := dec[len(dec)-1]
		if last.Generation != d.Generation || last.Status != d.Status || !sameWeights(last.After, d.Weights) {
			t.Fatalf("rollout %s: document gen %d %s %v, last decision %+v", d.ID, d.Generation, d.Status, d.Weights, last)
		}
		if d.Status.Terminal() == d.Ended.IsZero() {
			t.Fatalf("rollout %s: status %s, ended %v", d.ID, d.Status, d.Ended)
		}
		if !d.Status.Terminal() {
			for _, a := range active {
				if len(overlap(&a.Plan, &d.Plan)) > 0 {
					t.Fatalf("active rollouts %s and %s overlap", a.ID, d.ID)
				}
			}
			active = append(active, d)
			for c, w := range d.Weights {
				if cw, ok := cells[c]; ok && !near(cw, w) {
					t.Fatalf("cell %s: journal weight %g, active rollout %s says %g", c, cw, d.ID, w)
				}
			}
		}
	}
	j.Close()
	bal := &fakeBalancer{}
	c, err := Open(path, Options{Cells: testCells()}, Hooks{Apply: bal.Apply})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	defer c.Close()
	for _, d := range active {
		assertWeights(t, bal.weights(), d.Weights)
	}
}
