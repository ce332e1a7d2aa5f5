package cellgate_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// TestFleetRestartReappliesNothing: three nodes with real journals and
// real memberlist on loopback. A manual weight is set before a rollout;
// then, mid-rollout (paused at its second step) and again after its
// promotion, one node is shut down
// and restarted from its journal under its name and gossip address. Each
// time every node keeps its weights and rollout status, and the only new
// audit event anywhere is the marker sent after the restart: no earlier
// change is applied again. (With manual weights held in memory as
// last-writer-wins registers, the restarted node took the old manual
// weight as news: the rollout was paused fleet-wide mid-rollout, and after
// the promotion the canary went back to the old manual weight.)
func TestFleetRestartReappliesNothing(t *testing.T) {
	checkGoroutines(t)
	nodes := startRestartFleet(t)
	n1 := nodes[0]
	if err := nodes[1].node.SetWeight("canary-1", 30, "admin:ops", "before the rollout"); err != nil {
		t.Fatal(err)
	}
	waitWeights(t, nodes, "canary-1", 30)
	plan := canaryPlan(time.Hour) // advanced by hand only
	id, err := n1.node.Controller().Start(plan, "admin:ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.node.Controller().PromoteNow(id, "admin:ops"); err != nil {
		t.Fatal(err)
	}
	// Paused, so that node-1's ticks change nothing while the test looks.
	if err := n1.node.Controller().Pause(id, "admin:ops", "hold still"); err != nil {
		t.Fatal(err)
	}
	waitSame(t, nodes, id)
	restartAndCheck(t, nodes, 2, id, rollout.StatusPaused, 1)

	for {
		v, _ := n1.node.Controller().Rollout(id)
		if v.Status == rollout.StatusPromoted {
			break
		}
		if err := n1.node.Controller().PromoteNow(id, "admin:ops"); err != nil {
			t.Fatal(err)
		}
	}
	waitSame(t, nodes, id)
	restartAndCheck(t, nodes, 1, id, rollout.StatusPromoted, 2)
}

// restartAndCheck restarts nodes[i] from its journal, sends a marker (a
// manual weight on spare-1) from node-1 once the cluster has the node back,
// and checks that on every node the marker is the only new event and
// nothing else changed.
func restartAndCheck(t *testing.T, nodes []*fleetNode, i int, id string, status rollout.Status, marker float64) {
	t.Helper()
	type seen struct {
		weights map[string]float64
		last    uint64
	}
	before := map[string]seen{}
	for _, n := range nodes {
		evs, err := n.node.Controller().Audit(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		before[n.name] = seen{weights: n.node.Proxy().Weights(), last: evs[len(evs)-1].Seq}
	}
	r := nodes[i]
	cfg := *r.cfg
	cfg.Gossip.Bind = r.node.GossipAddr() // same name, same address
	r.stop()
	r.start(&cfg)
	testwait.For(t, 20*time.Second, "3 alive members on every node", func() bool {
		for _, n := range nodes {
			if len(n.node.Controller().Weights()) == 0 || n.node.GossipAddr() == "" || aliveMembers(n) != 3 {
				return false
			}
		}
		return true
	})
	if err := nodes[0].node.SetWeight("spare-1", marker, "admin:ops", "marker"); err != nil {
		t.Fatal(err)
	}
	waitWeights(t, nodes, "spare-1", marker)
	for _, n := range nodes {
		want := maps.Clone(before[n.name].weights)
		want["spare-1"] = marker
		if got := n.node.Proxy().Weights(); !maps.Equal(got, want) {
			all, _ := n.node.Controller().Audit(0, 0)
			t.Errorf("%s after %s restarted: weights %v, want %v; audit:\n%s", n.name, r.name, got, want, eventList(all))
		}
		evs, _ := n.node.Controller().Audit(before[n.name].last, 0)
		if len(evs) != 1 || evs[0].After["spare-1"] != marker {
			t.Errorf("%s after %s restarted: %d new events, want only the marker:\n%s", n.name, r.name, len(evs), eventList(evs))
		}
		if v, err := n.node.Controller().Rollout(id); err != nil || v.Status != status {
			t.Errorf("%s after %s restarted: rollout %s (%v), want %s", n.name, r.name, v.Status, err, status)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%s restarted with rollout %s: weights and status unchanged on all 3 nodes; 1 new audit event each (the marker)", r.name, status)
}

func aliveMembers(n *fleetNode) int { return len(n.node.Members()) }

func eventList(evs []rollout.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("  seq %d %s %s %s gen %d: %s %v → %v\n", e.Seq, e.Actor, e.Rollout, e.Action, e.Generation, e.Reason, e.Before, e.After)
	}
	return s
}

func waitWeights(t *testing.T, nodes []*fleetNode, cell string, w float64) {
	t.Helper()
	testwait.For(t, 10*time.Second, fmt.Sprintf("%s at %g on every node", cell, w), func() bool {
		for _, n := range nodes {
			if n.node.Proxy().Weights()[cell] != w {
				return false
			}
		}
		return true
	})
}

// waitSame waits until every node holds node-1's version of the rollout
// and serves its weights (the journal shows a version a moment before the
// balancer has its weights).
func waitSame(t *testing.T, nodes []*fleetNode, id string) {
	t.Helper()
	testwait.For(t, 10*time.Second, "node-1's rollout version and weights on every node", func() bool {
		v1, err := nodes[0].node.Controller().Rollout(id)
		if err != nil {
			return false
		}
		w1 := nodes[0].node.Proxy().Weights()
		for _, n := range nodes[1:] {
			if v, err := n.node.Controller().Rollout(id); err != nil || v.Generation != v1.Generation || !maps.Equal(n.node.Proxy().Weights(), w1) {
				return false
			}
		}
		return true
	})
}

// startRestartFleet starts three nodes over shared cells plus spare-1, a
// cell no plan uses (its manual weight is the test's marker).
func startRestartFleet(t *testing.T) []*fleetNode {
	t.Helper()
	var servers []*democell.Server
	for _, name := range []string{"stable-a", "stable-b", "canary-1", "spare-1"} {
		s, err := democell.Start(name, "v1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers = append(servers, s)
	}
	var nodes []*fleetNode
	join := ""
	for i := range 3 {
		name := fmt.Sprintf("node-%d", i+1)
		c := &cluster{t: t, cells: map[string]*democell.Server{}, path: filepath.Join(t.TempDir(), "j.db")}
		src := testtoml.HeadNoAdmin(name, c.path, `drain_timeout = "1s"`) + `[rollout]
tick = "100ms"
` + testtoml.Gossip(join) +
			testtoml.Cell("stable-a", "", 100, servers[0].Addr()) +
			testtoml.Cell("stable-b", "", 100, servers[1].Addr()) +
			testtoml.Cell("canary-1", "", 0, servers[2].Addr()) +
			testtoml.Cell("spare-1", "", 0, servers[3].Addr())
		c.startText(src, name+".toml")
		if join == "" {
			join = c.node.GossipAddr()
		}
		nodes = append(nodes, &fleetNode{cluster: c, name: name})
	}
	return nodes
}
