package cellgate_test

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// zdCheck classifies every response of a zero-downtime run: a failure is
// excused only when the cell's own upstream answered it (an injected 500),
// never when the proxy failed it; a connection reset is never excused.
type zdCheck struct {
	mu                             sync.Mutex // guards the fields below
	total, failed, excused, resets int64
	excuse                         func(bench.Observation) bool
	samples                        []string
}

func (z *zdCheck) observe(ob bench.Observation) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.total++
	if ob.Err != nil && errors.Is(ob.Err, syscall.ECONNRESET) {
		z.resets++
	}
	if !ob.Failed {
		return
	}
	if z.excuse != nil && z.excuse(ob) {
		z.excused++
		return
	}
	z.failed++
	if len(z.samples) < 5 {
		z.samples = append(z.samples, fmt.Sprintf("status %d cell %q err %v", ob.Status, ob.Cell, ob.Err))
	}
}

// report stops the load, then asserts and logs the counts. None of these
// operations has a reason to close a client's connection, so a request the
// generator had to resend on a keep-alive connection the proxy closed counts
// against it like a failure (a client that does not resend would have
// failed).
func (z *zdCheck) report(t *testing.T, what string, l *load) {
	t.Helper()
	resent := l.resent(t)
	z.mu.Lock()
	defer z.mu.Unlock()
	t.Logf("%s: %d requests, %d failed, %d failed by a faulty upstream itself, %d connection resets, %d resent on a stale keep-alive connection",
		what, z.total, z.failed, z.excused, z.resets, resent)
	if z.failed != 0 || z.resets != 0 || resent != 0 {
		t.Errorf("%s: %d requests failed that a healthy upstream could have served, %d resets, %d resent on a closed keep-alive connection; e.g. %v",
			what, z.failed, z.resets, resent, z.samples)
	}
	if z.total == 0 {
		t.Errorf("%s: no traffic", what)
	}
}

// zdLoad starts keyed open-loop load whose every response goes to z.
func zdLoad(t *testing.T, c *cluster, z *zdCheck) *load {
	l := startLoad(t, c.url(), 400, 2000)
	l.mu.Lock()
	l.onResponse = z.observe
	l.mu.Unlock()
	testwait.For(t, 10*time.Second, "traffic", func() bool { return l.requests.Load() > 100 })
	return l
}

// TestZeroDowntime runs open-loop keyed load through a node while, one at a
// time, the operations a release involves happen to it.
func TestZeroDowntime(t *testing.T) {
	waitBound(t)
	t.Run("promote-healthy-canary", func(t *testing.T) {
		c := startCluster(t, fmt.Sprintf(healthyHead, "200ms"), canaryCells()...)
		z := &zdCheck{}
		l := zdLoad(t, c, z)
		id, err := c.node.Controller().Start(canaryPlan(300*time.Millisecond), "test")
		if err != nil {
			t.Fatal(err)
		}
		if v := waitTerminal(t, c, id, 60*time.Second); v.Status != rollout.StatusPromoted {
			t.Fatalf("status %s", v.Status)
		}
		z.report(t, "promotion 1→100 %", l)
	})
	t.Run("revert-faulty-canary", func(t *testing.T) {
		c := startCluster(t, fmt.Sprintf(e2eHead, "200ms"), canaryCells()...)
		z := &zdCheck{excuse: func(ob bench.Observation) bool {
			return string(ob.Cell) == "canary-1" && ob.Status == 500 // the canary's own fault
		}}
		l := zdLoad(t, c, z)
		id, err := c.node.Controller().Start(canaryPlan(300*time.Millisecond), "test")
		if err != nil {
			t.Fatal(err)
		}
		var v rollout.RolloutView
		testwait.For(t, 30*time.Second, "25 %", func() bool {
			v, _ = c.node.Controller().Rollout(id)
			return v.Step >= 2 || v.Status.Terminal()
		})
		if v.Status != rollout.StatusProgressing {
			t.Fatalf("status %s before the fault, want progressing", v.Status)
		}
		c.cells["canary-1"].SetErrorRatio(0.3)
		if v := waitTerminal(t, c, id, 30*time.Second); v.Status != rollout.StatusRolledBack {
			t.Fatalf("status %s", v.Status)
		}
		z.report(t, "revert of a faulty canary", l)
	})
	t.Run("weights-by-hand", func(t *testing.T) {
		c := startCluster(t, fmt.Sprintf(healthyHead, "200ms"), canaryCells()...)
		z := &zdCheck{}
		l := zdLoad(t, c, z)
		for i, w := range []float64{10, 50, 200, 0, 100, 0} {
			if err := c.node.SetWeight("canary-1", w, "test", fmt.Sprintf("step %d", i)); err != nil {
				t.Fatal(err)
			}
			before := l.requests.Load()
			testwait.For(t, 10*time.Second, "traffic at the new weight", func() bool { return l.requests.Load() > before+100 })
		}
		z.report(t, "six manual weight changes", l)
	})
	t.Run("upstream-killed-and-restarted", func(t *testing.T) {
		c := startCluster(t, fmt.Sprintf(healthyHead, "200ms"),
			cellDef{"stable-a", "v1", 100, 2}, cellDef{"stable-b", "v1", 100, 1})
		victim := c.cells["stable-a"] // first of stable-a's two endpoints
		addr := victim.Addr()
		// Strict: the endpoint is killed between requests, so every GET
		// must succeed — a dial to the dead endpoint is retried on the
		// other one, and so is a pooled connection found dead before any
		// response byte.
		z := &zdCheck{}
		l := zdLoad(t, c, z)
		for round := range 3 {
			before := l.requests.Load()
			victim.Kill()
			testwait.For(t, 10*time.Second, "traffic while the endpoint is down", func() bool { return l.requests.Load() > before+300 })
			var err error
			victim, err = democell.StartAt("stable-a", "v1", addr)
			if err != nil {
				t.Fatalf("restart %d: %v", round, err)
			}
			t.Cleanup(func() { victim.Close() })
			before = l.requests.Load()
			testwait.For(t, 10*time.Second, "traffic after the restart", func() bool { return l.requests.Load() > before+300 })
		}
		z.report(t, "an endpoint killed and restarted 3 times", l)
	})
}
