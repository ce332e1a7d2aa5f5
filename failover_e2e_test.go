package cellgate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// served is one response as the failover tests account for it.
type served struct {
	at     time.Time
	key    string
	cell   string
	ok     bool
	method string
	status int
	err    error
}

// keyedLoad is open-loop keyed traffic of one method from the bench
// generator, every response appended to a shared log. Keys are sent in
// turn (bench.DistSeq), not drawn: the waits below need every key (or
// every one of a cell's) seen, which random draws need Keys·ln(Keys)
// requests for — more than a starved generator sent in 60 s at a load
// average of 23 (timed out waiting for every user served once).
type keyedLoad struct {
	mu   sync.Mutex // guards log
	log  []served
	stop []func()
}

func (k *keyedLoad) add(t *testing.T, url, method string, rate float64, keys int) {
	t.Helper()
	cfg := bench.DefaultConfig()
	cfg.URL, cfg.Rate, cfg.Keys, cfg.Method = url, rate, keys, method
	cfg.KeyDist = bench.DistSeq
	cfg.Connections, cfg.Warmup, cfg.Duration, cfg.Timeout = 32, 0, 0, 5*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = bench.Run(ctx, cfg, bench.Hooks{OnResponse: func(ob bench.Observation) {
			s := served{at: time.Now(), key: string(ob.Key), cell: string(ob.Cell), ok: !ob.Failed, method: method, status: ob.Status, err: ob.Err}
			k.mu.Lock()
			k.log = append(k.log, s)
			k.mu.Unlock()
		}})
	}()
	stop := func() { cancel(); <-done }
	k.stop = append(k.stop, stop)
	t.Cleanup(stop)
}

func (k *keyedLoad) halt() {
	for _, s := range k.stop {
		s()
	}
}

// waitAllServed waits until each of users keys has had a response.
func (k *keyedLoad) waitAllServed(t *testing.T, users int) {
	t.Helper()
	testwait.For(t, 60*time.Second, "every user served once", func() bool {
		seen := map[string]bool{}
		for _, s := range k.snapshot() {
			seen[s.key] = true
		}
		return len(seen) == users
	})
}

func (k *keyedLoad) snapshot() []served {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]served(nil), k.log...)
}

// failoverFleet is a node over cells a, b, c of weight 100 with two demo
// endpoints each, keyed by X-User-ID with a fixed seed, so the test can
// compute every user's cell and failover cell with the balancer itself.
type failoverFleet struct {
	c     *cluster
	eps   map[string][]*democell.Server
	table *balancer.Table
	names []string
}

const failoverSeed = 7

func startFailoverFleet(t *testing.T, extra string, health string) *failoverFleet {
	t.Helper()
	return startFailoverFleetN(t, 2, extra, health)
}

// startFailoverFleetN is startFailoverFleet with perCell endpoints a cell.
func startFailoverFleetN(t *testing.T, perCell int, extra string, health string) *failoverFleet {
	t.Helper()
	f := &failoverFleet{eps: map[string][]*democell.Server{}, names: []string{"a", "b", "c"}}
	var b strings.Builder
	b.WriteString(testtoml.Head("failover-1", t.TempDir()+"/j.db", `drain_timeout = "5s"`))
	fmt.Fprintf(&b, "[routing]\nsticky_key = [\"header:X-User-ID\"]\nseed = %d\n%s\n", failoverSeed, extra)
	var cells []balancer.Cell
	for _, name := range f.names {
		var addrs []string
		for range perCell {
			s, err := democell.Start(name, "v1")
			if err != nil {
				t.Fatal(err)
			}
			s.SetDelay(2 * time.Millisecond) // so requests are in flight when a cell dies
			t.Cleanup(func() { s.Close() })
			f.eps[name] = append(f.eps[name], s)
			addrs = append(addrs, s.Addr())
		}
		b.WriteString(testtoml.Cell(name, "v1", 100, addrs...) + health + "\n")
		cells = append(cells, balancer.Cell{Name: name, Weight: 100})
	}
	f.table = balancer.NewTable(failoverSeed, cells)
	f.c = startFromText(t, b.String())
	return f
}

// home and failover are the cells the balancer gives a key with every
// cell up, and with cell down taken out.
func (f *failoverFleet) home(key string) string { return f.names[f.table.PickKey([]byte(key))] }
func (f *failoverFleet) failover(key, down string) string {
	var skip balancer.CellSet
	skip.Add(f.table.Index(down))
	return f.names[f.table.PickExcept(f.table.Hash([]byte(key)), &skip)]
}

// kill crashes every endpoint of cell; revive restarts them where they were.
func (f *failoverFleet) kill(cell string) {
	for _, s := range f.eps[cell] {
		s.Kill()
	}
}

func (f *failoverFleet) revive(t *testing.T, cell string) {
	t.Helper()
	for i, s := range f.eps[cell] {
		n, err := democell.StartAt(cell, "v1", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		n.SetDelay(2 * time.Millisecond)
		t.Cleanup(func() { n.Close() })
		f.eps[cell][i] = n
	}
}

func (f *failoverFleet) cellUp(name string) bool {
	for _, c := range f.c.node.Proxy().Status() {
		if c.Name == name {
			return c.Up
		}
	}
	return false
}

// failoverReport is what one outage of cell b measured.
type failoverReport struct {
	detect, lastFail, back   time.Duration
	movedB, wrongB, others   int
	failedGET, failedPOST    int
	returned, usersB, total  int
	othersFailed             int
	inflightFailed, failover uint64
	anyFail                  bool
	// failedLines lists every failed response of b's users, and
	// inflightByCell every cell's in-flight count: logged when the
	// failed POSTs and the node's count differ (seen once, not
	// reproduced since: 14 failed, 17 counted), to tell which side
	// has the extra ones.
	failedLines    []string
	inflightByCell map[string]uint64
}

// logMismatch logs what tells a failed-POST count that differs from the
// node's in-flight count apart.
func (r failoverReport) logMismatch(t *testing.T) {
	t.Helper()
	t.Logf("in flight counted by cell: %v; failed responses of b's users (%d):", r.inflightByCell, len(r.failedLines))
	for _, l := range r.failedLines {
		t.Log(l)
	}
}

func lastFail(r failoverReport) string {
	if !r.anyFail {
		return "none"
	}
	return "at " + r.lastFail.Round(time.Millisecond).String()
}

// runOutage drives GET and POST load over keys users, kills b, waits until
// each of b's users was served by its failover cell, revives b and waits
// until each is back, then accounts for every response.
func runOutage(t *testing.T, f *failoverFleet, users int) failoverReport {
	t.Helper()
	var ld keyedLoad
	ld.add(t, f.c.url(), "GET", 600, users)
	ld.add(t, f.c.url(), "POST", 150, users)
	bUsers := map[string]bool{}
	for u := range users {
		if k := fmt.Sprint("user-", u); f.home(k) == "b" {
			bUsers[k] = true
		}
	}
	servedSince := func(since time.Time, want func(key string) string) func() bool {
		return func() bool {
			seen := map[string]bool{}
			for _, s := range ld.snapshot() {
				if s.at.After(since) && s.ok && bUsers[s.key] && s.cell == want(s.key) {
					seen[s.key] = true
				}
			}
			return len(seen) == len(bUsers)
		}
	}
	ld.waitAllServed(t, users)

	tKill := time.Now()
	f.kill("b")
	testwait.For(t, 60*time.Second, "b's users served by their failover cells",
		servedSince(tKill, func(k string) string { return f.failover(k, "b") }))
	// Requests fail over before any evidence (a refused connect is
	// retried there), so b's users may all have moved before active
	// checks have failed `unhealthy` times; b must then be reported down.
	testwait.For(t, 60*time.Second, "cell b reported down with every endpoint dead", func() bool { return !f.cellUp("b") })
	tRevive := time.Now()
	f.revive(t, "b")
	// The node dials b's dead endpoints every eject_backoff (at most 1 s)
	// and readmits them on the first connect that succeeds (active checks:
	// the next passing check); 60 s only bounds a hang.
	testwait.For(t, 60*time.Second, "b's users back on b", servedSince(tRevive, func(string) string { return "b" }))
	ld.halt()

	var r failoverReport
	r.usersB, r.total = len(bUsers), users
	var firstFailover, lastFail, firstBack time.Time
	for _, s := range ld.snapshot() {
		switch {
		case !bUsers[s.key]:
			if s.cell != f.home(s.key) {
				r.others++
			}
			if !s.ok {
				r.othersFailed++
			}
		case !s.ok:
			line := fmt.Sprintf("failed: %s %s at %v on %q: %d %v", s.method, s.key, s.at.Sub(tKill).Round(time.Millisecond), s.cell, s.status, s.err)
			if r.failedGET+r.failedPOST < 3 {
				t.Log(line)
			}
			r.failedLines = append(r.failedLines, line)
			if s.method == "GET" {
				r.failedGET++
			} else {
				r.failedPOST++
			}
			lastFail = s.at
		case s.at.After(tKill) && s.at.Before(tRevive) && s.cell != "b":
			if s.cell == f.failover(s.key, "b") {
				r.movedB++
				if firstFailover.IsZero() {
					firstFailover = s.at
				}
			} else {
				r.wrongB++
			}
		case s.at.After(tRevive) && s.cell == "b" && firstBack.IsZero():
			firstBack = s.at
		}
	}
	t.Logf("b killed at 0, revived at %v", tRevive.Sub(tKill).Round(time.Millisecond))
	r.detect = firstFailover.Sub(tKill)
	if !lastFail.IsZero() {
		r.lastFail, r.anyFail = lastFail.Sub(tKill), true
	}
	r.back = firstBack.Sub(tRevive)
	returned := map[string]bool{}
	for _, s := range ld.snapshot() {
		if s.at.After(tRevive) && bUsers[s.key] && s.cell == "b" {
			returned[s.key] = true
		}
	}
	r.returned = len(returned)
	r.inflightByCell = map[string]uint64{}
	for _, c := range f.c.node.Proxy().Status() {
		r.inflightByCell[c.Name] = c.InflightFailed
		if c.Name == "b" {
			r.inflightFailed, r.failover = c.InflightFailed, c.Failovers
		}
	}
	return r
}

// TestCellFailoverUnderLoad is the outage: under open-loop keyed
// GET and POST load, every endpoint of stable cell b is killed. Passive
// evidence (refused connects) takes b out at once, each of b's users is
// served by its next rendezvous choice, nobody else moves, no GET fails,
// and the only failed POSTs are those in flight when b died (counted by
// the node). When b is back each of its users returns to it.
func TestCellFailoverUnderLoad(t *testing.T) {
	f := startFailoverFleet(t, "[upstream]\neject_after = 5\neject_backoff = \"100ms\"", "")
	r := runOutage(t, f, 300)
	t.Logf("passive: cell b killed: first user on its failover cell after %v, last failed request %s; %d of %d users are b's",
		r.detect.Round(time.Millisecond), lastFail(r), r.usersB, r.total)
	t.Logf("passive: responses for b's users served by their failover cell: %d, by another cell: %d; other users moved: %d",
		r.movedB, r.wrongB, r.others)
	t.Logf("passive: failed GET %d, failed POST %d (node counted %d in flight), failovers %d; b back: first user after %v, %d of %d users returned",
		r.failedGET, r.failedPOST, r.inflightFailed, r.failover, r.back.Round(time.Millisecond), r.returned, r.usersB)
	if r.failedGET != 0 || r.others != 0 || r.othersFailed != 0 || r.wrongB != 0 || r.movedB == 0 {
		t.Errorf("failed GET %d, other users moved %d (failed %d), b's users on a wrong cell %d, failed over %d: want 0, 0 (0), 0, > 0",
			r.failedGET, r.others, r.othersFailed, r.wrongB, r.movedB)
	}
	if uint64(r.failedPOST) != r.inflightFailed {
		t.Errorf("%d POSTs failed but the node counted %d in flight when b died", r.failedPOST, r.inflightFailed)
		r.logMismatch(t)
	}
	if r.returned != r.usersB {
		t.Errorf("%d of b's %d users returned", r.returned, r.usersB)
	}
}

// TestCellFailoverActiveChecksOnly: with passive ejection off, b's users
// fail over once b's active TCP checks fail `unhealthy` times in a row
// (the time is printed against interval × unhealthy). Until then there is
// no evidence, yet no GET fails: one that could not connect goes to its
// failover cell, and one lost on a pooled connection the kill reset
// before any response byte is retried once there too. The only failed
// POSTs are those the node counted in flight. The probe timeout is
// generous so a loaded test machine (the race detector on two cores) does
// not fail probes of live endpoints: 200 ms did at a load average of 23
// (three connects in a row timed out on both of a live cell's endpoints,
// which moved its users), and costs nothing here, as the dead cell's
// probes are refused at once. It may not exceed the interval.
func TestCellFailoverActiveChecksOnly(t *testing.T) {
	f := startFailoverFleet(t, "[upstream]\neject_after = 0",
		`health = { interval = "1s", timeout = "1s", unhealthy = 3, healthy = 1 }`)
	r := runOutage(t, f, 300)
	t.Logf("active only (interval 1s × unhealthy 3 = 3s): first user on its failover cell after %v, last failed request %s",
		r.detect.Round(time.Millisecond), lastFail(r))
	t.Logf("active only: failed GET %d, failed POST %d (node counted %d in flight), failovers %d; other users moved %d; b's users on a wrong cell %d; %d of %d returned",
		r.failedGET, r.failedPOST, r.inflightFailed, r.failover, r.others, r.wrongB, r.returned, r.usersB)
	if r.failedGET != 0 || r.others != 0 || r.othersFailed != 0 || r.wrongB != 0 || r.movedB == 0 || r.returned != r.usersB {
		t.Errorf("failed GET %d, other users moved %d (failed %d), b's users on a wrong cell %d, failed over %d, returned %d/%d: want 0, 0 (0), 0, > 0, all",
			r.failedGET, r.others, r.othersFailed, r.wrongB, r.movedB, r.returned, r.usersB)
	}
	if uint64(r.failedPOST) != r.inflightFailed {
		t.Errorf("%d POSTs failed but the node counted %d in flight when b died", r.failedPOST, r.inflightFailed)
		r.logMismatch(t)
	}
}

// TestCanaryDownIsRolledBack: a canary whose every endpoint dies mid-rollout
// is judged failing (rule cell_down) and rolled back — not failed over for
// ever — while its users are served by their failover cells; the outage is
// journaled as a cell_down event and no weight but the canary's changes.
func TestCanaryDownIsRolledBack(t *testing.T) {
	head := fmt.Sprintf(healthyHead, "200ms") + "[upstream]\neject_after = 5\neject_backoff = \"1s\"\n"
	c := startCluster(t, head, canaryCells()...)
	l := startLoad(t, c.url(), 400, 2000)
	testwait.For(t, 60*time.Second, "baseline traffic", func() bool { return l.requests.Load() > 200 })
	id, err := c.node.Controller().Start(canaryPlan(2*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "step 2 (5%)", func() bool {
		v, _ := c.node.Controller().Rollout(id)
		return v.Step >= 2 || v.Status.Terminal()
	})
	before := l.failed.Load()
	onset := time.Now()
	c.cells["canary-1"].Kill()
	v := waitTerminal(t, c, id, 15*time.Second)
	took := time.Since(onset)
	l.stop()
	if v.Status != rollout.StatusRolledBack {
		t.Fatalf("status %s (%s), want rolled_back; decisions:\n%s", v.Status, v.Reason, decisions(v))
	}
	last := v.Decisions[len(v.Decisions)-1]
	if last.Verdict == nil || last.Verdict.Rule != "cell_down" {
		t.Fatalf("rolled back by %+v, want the cell_down rule", last.Verdict)
	}
	if w := c.node.Proxy().Weights(); w["canary-1"] != 0 || w["stable-a"] != 100 || w["stable-b"] != 100 {
		t.Fatalf("weights after rollback: %v", w)
	}
	// The node journals what it saw within a cell-watch period (the
	// rollback may come first).
	testwait.For(t, 60*time.Second, "a cell_down event in the audit log", func() bool {
		evs, err := c.node.Controller().Audit(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Action == rollout.ActionCellDown && ev.Actor == "health:test-1" {
				return true
			}
		}
		return false
	})
	t.Logf("canary killed at step %d: rolled back in %v by %q; %d user requests failed meanwhile (of %d)",
		v.Step, took.Round(time.Millisecond), last.Verdict.Reason, l.failed.Load()-before, l.requests.Load())
}
