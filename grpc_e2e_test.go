package cellgate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cellgate/cellgate/internal/grpcecho"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// grpcRig is a node in front of three gRPC cells (stable-a, stable-b and
// canary-1, protocol h2c) with keyed gRPC load running through it.
type grpcRig struct {
	c       *cluster
	cells   map[string]*grpcecho.Server
	calls   atomic.Int64
	failed  atomic.Int64
	byCode  sync.Map // codes.Code → *atomic.Int64
	stopped chan struct{}
	wg      sync.WaitGroup
}

func startGRPCRig(t *testing.T, head string) *grpcRig {
	t.Helper()
	r := &grpcRig{cells: map[string]*grpcecho.Server{}, stopped: make(chan struct{})}
	var b strings.Builder
	b.WriteString(testtoml.Head("grpc-1", t.TempDir()+"/journal.db", "h2c = true", `drain_timeout = "5s"`) + head + "\n")
	for _, d := range []struct {
		name, version string
		weight        float64
	}{{"stable-a", "v1", 100}, {"stable-b", "v1", 100}, {"canary-1", "v2", 0}} {
		s, err := grpcecho.Start(d.name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		r.cells[d.name] = s
		b.WriteString(testtoml.Cell(d.name, d.version, d.weight, s.Addr()) + "protocol = \"h2c\"\n")
	}
	r.c = startFromText(t, b.String())
	return r
}

// load runs workers callers, each calling in a loop with its own keys
// (at most rate calls per second in all), until stop.
func (r *grpcRig) load(t *testing.T, workers int, rate float64) {
	t.Helper()
	cl, err := grpcecho.Dial(r.c.node.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	every := time.Duration(float64(workers) / rate * float64(time.Second))
	for w := range workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-r.stopped:
					return
				case <-tick.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _, err := cl.Call(ctx, fmt.Sprintf("user-%d-%d", w, i%50), "hi")
				cancel()
				r.calls.Add(1)
				if err != nil {
					r.failed.Add(1)
					n, _ := r.byCode.LoadOrStore(status.Code(err), new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
		}()
	}
}

func (r *grpcRig) stop() {
	close(r.stopped)
	r.wg.Wait()
}

func (r *grpcRig) codes() string {
	var parts []string
	r.byCode.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%v=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	return strings.Join(parts, " ")
}

// TestGRPCCanaryPromotesWithZeroFailures: a healthy gRPC canary is promoted
// step by step under keyed gRPC load, and no call fails on the way.
func TestGRPCCanaryPromotesWithZeroFailures(t *testing.T) {
	waitBound(t)
	r := startGRPCRig(t, fmt.Sprintf(healthyHead, "200ms"))
	r.load(t, 8, 300)
	testwait.For(t, 20*time.Second, "baseline calls", func() bool { return r.calls.Load() > 100 })
	id, err := r.c.node.Controller().Start(canaryPlan(500*time.Millisecond), "test")
	if err != nil {
		t.Fatal(err)
	}
	v := waitTerminal(t, r.c, id, 90*time.Second)
	r.stop()
	if v.Status != rollout.StatusPromoted {
		t.Fatalf("status %s (%s), want promoted; decisions:\n%s", v.Status, v.Reason, decisions(v))
	}
	if r.cells["canary-1"].Calls() == 0 {
		t.Error("the canary got no call")
	}
	if n := r.failed.Load(); n != 0 {
		t.Errorf("%d of %d calls failed during a healthy rollout: %s", n, r.calls.Load(), r.codes())
	}
	t.Logf("promoted after %d calls (canary got %d), 0 failed", r.calls.Load(), r.cells["canary-1"].Calls())
}

// TestGRPCCanaryRevertsOnUnavailable: a canary whose calls start answering
// UNAVAILABLE — HTTP 200 around a failing grpc-status — is rolled back by
// the controller, as one answering 500s is. The time from onset to canary
// weight 0 is logged, not asserted (a loaded machine stretches it).
func TestGRPCCanaryRevertsOnUnavailable(t *testing.T) {
	waitBound(t)
	r := startGRPCRig(t, fmt.Sprintf(e2eHead, "1s"))
	r.load(t, 8, 300)
	testwait.For(t, 20*time.Second, "baseline calls", func() bool { return r.calls.Load() > 100 })
	id, err := r.c.node.Controller().Start(canaryPlan(time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	var atFault rollout.RolloutView
	testwait.For(t, 60*time.Second, "step 3 (25%)", func() bool {
		atFault, _ = r.c.node.Controller().Rollout(id)
		return atFault.Step >= 2 || atFault.Status.Terminal()
	})
	if atFault.Status != rollout.StatusProgressing {
		t.Fatalf("before the fault: status %s; decisions:\n%s", atFault.Status, decisions(atFault))
	}
	lastSeq := atFault.Decisions[len(atFault.Decisions)-1].Seq
	onset := time.Now()
	r.cells["canary-1"].SetFault(codes.Unavailable, 0.3)
	testwait.For(t, 60*time.Second, "canary weight 0", func() bool { return r.c.node.Proxy().Weights()["canary-1"] == 0 })
	revert := time.Since(onset)
	v := waitTerminal(t, r.c, id, 60*time.Second)
	r.stop()
	rollback := wantControllerRollback(t, v, lastSeq)
	if got := r.c.node.Proxy().GRPCCounts("canary-1"); got["14"] == 0 {
		t.Errorf("cellgate_grpc_requests_total of the canary %v: no UNAVAILABLE counted", got)
	}
	t.Logf("UNAVAILABLE on 30%% of canary calls: onset → canary weight 0 in %v; %d calls failed (of %d: %s); rollback #%d: %s",
		revert.Round(time.Millisecond), r.failed.Load(), r.calls.Load(), r.codes(), rollback.Seq, rollback.Reason)
}
