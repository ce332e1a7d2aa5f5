package cellgate_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/rollout"
)

// fleetNode is one node of an in-process fleet.
type fleetNode struct {
	*cluster
	name string
}

// startFleet starts n nodes over shared stable cells; canaryFor gives each
// node its canary endpoint (so a fault can be confined to some nodes'
// traffic). Node names sort in start order; node-1 is the first decider.
func startFleet(t *testing.T, n int, canaryFor func(i int) *democell.Server) []*fleetNode {
	t.Helper()
	stableA, _ := democell.Start("stable-a", "v1")
	stableB, _ := democell.Start("stable-b", "v1")
	t.Cleanup(func() { stableA.Close(); stableB.Close() })
	var nodes []*fleetNode
	join := ""
	for i := range n {
		name := fmt.Sprintf("node-%d", i+1)
		c := &cluster{t: t, cells: map[string]*democell.Server{}, path: filepath.Join(t.TempDir(), "j.db")}
		joinLine := ""
		if join != "" {
			joinLine = fmt.Sprintf("join = [%q]", join)
		}
		src := fmt.Sprintf(`node_name = %q
[listen]
addr = "127.0.0.1:0"
drain_timeout = "2s"
[admin]
addr = ""
[state]
path = %q
[routing]
sticky_key = ["header:X-User-ID"]
[slo]
latency_threshold = "10s" # see healthyHead
fast_burn = { long = "30s", short = "2s", rate = 14.4 }
slow_burn = { long = "60s", short = "5s", rate = 6 }
min_requests = 20
[rollout]
tick = "300ms"
[gossip]
bind = "127.0.0.1:0"
%s
[[cell]]
name = "stable-a"
weight = 100
endpoints = [%q]
[[cell]]
name = "stable-b"
weight = 100
endpoints = [%q]
[[cell]]
name = "canary-1"
version = "v2"
weight = 0
endpoints = [%q]
`, name, c.path, joinLine, stableA.Addr(), stableB.Addr(), canaryFor(i).Addr())
		cfg, err := configs.Parse([]byte(src), name+".toml")
		if err != nil {
			t.Fatal(err)
		}
		c.start(cfg)
		if join == "" {
			join = c.node.GossipAddr()
		}
		nodes = append(nodes, &fleetNode{cluster: c, name: name})
	}
	return nodes
}

// sharedCanary returns one healthy canary endpoint for every node.
func sharedCanary(t *testing.T) func(int) *democell.Server {
	s, _ := democell.Start("canary-1", "v2")
	t.Cleanup(func() { s.Close() })
	return func(int) *democell.Server { return s }
}

// TestFleetWeightConvergesAndKeysAgree: a manual weight change on one node
// is applied by all five (convergence time is logged), and a key lands on
// the same cell through every node.
func TestFleetWeightConvergesAndKeysAgree(t *testing.T) {
	nodes := startFleet(t, 5, sharedCanary(t))
	var times []time.Duration
	for round := range 5 {
		w := float64(10 * (round + 1))
		src := nodes[round%len(nodes)]
		start := time.Now()
		if err := src.node.SetWeight("canary-1", w, "test", "convergence round"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "weight on every node", 10*time.Second, func() bool {
			for _, n := range nodes {
				if n.node.Proxy().Weights()["canary-1"] != w {
					return false
				}
			}
			return true
		})
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	t.Logf("manual weight convergence over 5 nodes: min %v, median %v, max %v", times[0], times[len(times)/2], times[len(times)-1])
	for _, d := range times {
		if d > 3*time.Second {
			t.Errorf("a weight change took %v to reach every node (goal ≤ 1 s)", d)
		}
	}
	// The same key, through any node, reaches the same cell.
	client := &http.Client{Timeout: 5 * time.Second}
	for k := range 100 {
		key := fmt.Sprintf("user-%d", k)
		var cells []string
		for _, n := range nodes {
			req, _ := http.NewRequest("GET", n.url(), nil)
			req.Header.Set("X-User-ID", key)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cells = append(cells, resp.Header.Get("X-Cellgate-Cell"))
		}
		if len(slices.Compact(slices.Clone(cells))) != 1 {
			t.Fatalf("key %s reached different cells through different nodes: %v", key, cells)
		}
	}
}

// TestFleetRevertsOnFaultSeenByTwoNodes: the canary fails only behind two of
// five nodes; the rollout started on the decider is reverted on every node.
func TestFleetRevertsOnFaultSeenByTwoNodes(t *testing.T) {
	good, _ := democell.Start("canary-1", "v2")
	bad, _ := democell.Start("canary-1", "v2")
	t.Cleanup(func() { good.Close(); bad.Close() })
	nodes := startFleet(t, 5, func(i int) *democell.Server {
		if i >= 3 {
			return bad // node-4 and node-5
		}
		return good
	})
	for _, n := range nodes {
		startLoad(t, n.url(), 150, 1000)
	}
	id, err := nodes[0].node.Controller().Start(canaryPlan(400*time.Millisecond), "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "step 3 on the decider", 30*time.Second, func() bool {
		v, _ := nodes[0].node.Controller().Rollout(id)
		return v.Step >= 3 || v.Status.Terminal()
	})
	bad.SetErrorRatio(0.5)
	for _, n := range nodes {
		waitFor(t, n.name+" rolled back", 15*time.Second, func() bool {
			v, err := n.node.Controller().Rollout(id)
			return err == nil && v.Status == rollout.StatusRolledBack && n.node.Proxy().Weights()["canary-1"] == 0
		})
	}
	v, _ := nodes[0].node.Controller().Rollout(id)
	t.Logf("reverted fleet-wide: %s", v.Reason)
}

// TestFleetDeciderHandover: the decider is stopped mid-rollout; the next
// node takes over and the rollout is promoted with every step entered
// exactly once, in order.
func TestFleetDeciderHandover(t *testing.T) {
	nodes := startFleet(t, 3, sharedCanary(t))
	for _, n := range nodes {
		startLoad(t, n.url(), 150, 1000)
	}
	id, err := nodes[0].node.Controller().Start(canaryPlan(700*time.Millisecond), "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "step 2", 30*time.Second, func() bool {
		v, _ := nodes[1].node.Controller().Rollout(id)
		return v.Step >= 2
	})
	nodes[0].stop() // the decider leaves mid-rollout
	v := waitTerminal(t, nodes[1].cluster, id, 60*time.Second)
	if v.Status != rollout.StatusPromoted {
		t.Fatalf("status %s after handover; decisions:\n%s", v.Status, decisions(v))
	}
	steps := map[int]int{}
	var order []int
	for _, ev := range v.Decisions {
		if ev.Action == rollout.ActionStep || (ev.Action == rollout.ActionPeer && ev.Step > 0) {
			if steps[ev.Step] == 0 {
				order = append(order, ev.Step)
			}
			if ev.Action == rollout.ActionStep {
				steps[ev.Step]++
			}
		}
	}
	if !sort.IntsAreSorted(order) || len(order) != 5 {
		t.Fatalf("steps seen in order %v; decisions:\n%s", order, decisions(v))
	}
	for s, count := range steps {
		if count > 1 {
			t.Errorf("step %d entered %d times", s, count)
		}
	}
	t.Logf("promoted after handover; steps %v; %s", order, strings.TrimSpace(decisions(v)))
}
