package cellgate_test

import (
	"context"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// leakScope names the code whose goroutines a test must not leave
// behind: ours and the libraries a node starts goroutines in.
var leakScope = []string{"cellgate/cellgate", "hashicorp/memberlist", "valyala/fasthttp", "go.etcd.io/bbolt", "dgraph-io/ristretto"}

// processWide are goroutines a node cannot stop: a library starts them
// once per process, or ends them by itself after a fixed sleep once their
// owner stopped (fasthttp's worker-pool cleaner checks its stop channel
// every 10 s; a client's idle-connection cleaner exits after its idle
// timeout once its connections are closed).
var processWide = []string{
	"fasthttp.updateServerDate", "fasthttp.init", "ristretto/v2/z.init",
	"fasthttp.(*workerPool).Start.func2", "fasthttp.(*HostClient).connsCleaner",
}

// checkGoroutines fails the test if, once its cleanups ran, goroutines in
// leakScope that were not there when it was called are still running
// after 5 s. Call it first in a test, so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := goroutineStacks()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := newGoroutines(before)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines left running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// newGoroutines returns the stacks of in-scope goroutines not in before.
func newGoroutines(before map[string]string) []string {
	var out []string
	for id, st := range goroutineStacks() {
		if _, old := before[id]; old || !inScope(st) {
			continue
		}
		out = append(out, st)
	}
	return out
}

func inScope(stack string) bool {
	for _, p := range processWide {
		if strings.Contains(stack, p) {
			return false
		}
	}
	for _, p := range leakScope {
		if strings.Contains(stack, p) {
			return true
		}
	}
	return false
}

// goroutineStacks returns every goroutine's stack by its id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, " [")
		out[strings.TrimPrefix(head, "goroutine ")] = g
	}
	return out
}

// countGoroutines counts live goroutines whose stack contains fn.
func countGoroutines(fn string) int {
	n := 0
	for _, st := range goroutineStacks() {
		if strings.Contains(st, fn) {
			n++
		}
	}
	return n
}

// TestNodeLeavesNoGoroutines: a node with every part (data plane, admin
// API, gossip, controller) started and shut down leaves nothing running.
func TestNodeLeavesNoGoroutines(t *testing.T) {
	checkGoroutines(t)
	cell, _ := democell.Start("stable-a", "v1")
	t.Cleanup(func() { cell.Close() })
	node := startGossipNode(t, "leak-1", cell.Addr())
	resp, err := http.Get("http://" + node.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := node.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHandoverReleaseStopsFleet: after ReleaseControl nothing of the
// control plane runs — in particular no SLI sender exporting into the
// cluster the node left — and a failed handover taken back twice runs
// exactly one SLI sender, not one per attempt.
func TestHandoverReleaseStopsFleet(t *testing.T) {
	checkGoroutines(t)
	cell, _ := democell.Start("stable-a", "v1")
	t.Cleanup(func() { cell.Close() })
	node := startGossipNode(t, "leak-2", cell.Addr())
	const sender = "(*fleet).run"
	testwait.For(t, 5*time.Second, "one SLI sender after Start", func() bool { return countGoroutines(sender) == 1 })
	for attempt := 1; attempt <= 2; attempt++ {
		if err := node.ReleaseControl(); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 5*time.Second, "no SLI sender after ReleaseControl", func() bool { return countGoroutines(sender) == 0 })
		if n := countGoroutines("rollout.(*Controller).run"); n != 0 {
			t.Fatalf("attempt %d: %d controller tickers after ReleaseControl", attempt, n)
		}
		if err := node.ReacquireControl(); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 5*time.Second, "exactly one SLI sender after ReacquireControl", func() bool { return countGoroutines(sender) == 1 })
	}
	if err := node.SetWeight("stable-a", 3, "test", "after two failed handovers"); err != nil {
		t.Fatalf("controller after two failed handovers: %v", err)
	}
	if err := node.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startGossipNode starts a single node with an admin API and gossip on
// loopback; the test's cleanup shuts it down.
func startGossipNode(t *testing.T, name, cell string) *cellgate.Node {
	t.Helper()
	src := testtoml.Head(name, filepath.Join(t.TempDir(), "j.db"), `drain_timeout = "1s"`) + `[rollout]
tick = "50ms"
` + testtoml.Gossip("") + testtoml.Cell("stable-a", "", 1, cell)
	cfg, err := configs.Parse([]byte(src), name+".toml")
	if err != nil {
		t.Fatal(err)
	}
	node, err := cellgate.New(cfg, cellgate.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown(context.Background()) })
	return node
}
