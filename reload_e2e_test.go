package cellgate_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgate/cellgate/admin/ctl"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testwait"
)

// fileNode is a node started from a config file, so it can reload.
type fileNode struct {
	*cluster
	file string
	eps  map[string][]*democell.Server
}

// writeConfig renders a config whose cells use the given endpoints.
func (f *fileNode) writeConfig(t *testing.T, extra string, cells map[string][]*democell.Server) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node_name = \"reload-1\"\n[listen]\naddr = %q\ndrain_timeout = \"5s\"\n[admin]\naddr = %q\n[state]\npath = %q\n[routing]\nsticky_key = [\"header:X-User-ID\"]\n%s\n",
		f.listen(), f.adminAddr(), f.path, extra)
	for _, name := range []string{"stable-a", "stable-b"} {
		var eps []string
		for _, s := range cells[name] {
			eps = append(eps, fmt.Sprintf("%q", s.Addr()))
		}
		fmt.Fprintf(&b, "[[cell]]\nname = %q\nversion = \"v1\"\nweight = 100\nendpoints = [%s]\n", name, strings.Join(eps, ", "))
	}
	if err := os.WriteFile(f.file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listen and adminAddr stay port 0 in every version of the file: the
// running listeners keep their ports across reloads.
func (f *fileNode) listen() string    { return "127.0.0.1:0" }
func (f *fileNode) adminAddr() string { return "127.0.0.1:0" }

func startFileNode(t *testing.T) *fileNode {
	t.Helper()
	dir := t.TempDir()
	f := &fileNode{file: filepath.Join(dir, "cellgate.toml"), eps: map[string][]*democell.Server{}}
	for _, name := range []string{"stable-a", "stable-a", "stable-b", "stable-b"} {
		s, err := democell.Start(name, "v1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f.eps[name] = append(f.eps[name], s)
	}
	f.cluster = &cluster{t: t, cells: map[string]*democell.Server{}, path: filepath.Join(dir, "j.db")}
	f.writeConfig(t, "", f.eps)
	cfg, err := configs.Load(f.file)
	if err != nil {
		t.Fatal(err)
	}
	f.start(cfg)
	return f
}

// ctlRun runs `cellgate ctl` against the node.
func ctlRun(f *fileNode, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := ctl.Main(append([]string{"-admin", "http://" + f.node.AdminAddr()}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestReloadInvalidChangesNothing: a broken file is refused with file:line
// through the admin API, and the node keeps its cells and weights.
func TestReloadInvalidChangesNothing(t *testing.T) {
	f := startFileNode(t)
	before := fmt.Sprint(f.node.Proxy().Status())
	bad := "node_name = \"reload-1\"\n[listen]\naddr = \"127.0.0.1:0\"\n[[cell]]\nname = \"stable-a\"\nweight = -1\nendpoints = []\nbogus = true\n"
	if err := os.WriteFile(f.file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := ctlRun(f, "reload")
	if code != 1 || !strings.Contains(errOut, f.file+":6") || !strings.Contains(errOut, "unknown key") {
		t.Fatalf("ctl reload of a broken file: exit %d, %s", code, errOut)
	}
	if after := fmt.Sprint(f.node.Proxy().Status()); after != before {
		t.Fatalf("a refused reload changed the cells:\nbefore %s\nafter  %s", before, after)
	}
	resp, err := http.Get(f.url())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("node stopped serving after a refused reload: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestReloadUnderLoadLosesNothing: reloads that add and remove endpoints
// and renew every upstream pool, under open-loop keyed load, fail no
// request; a slow request in flight to a removed endpoint completes.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	f := startFileNode(t)
	l := startLoad(t, f.url(), 500, 1000)
	testwait.For(t, 10*time.Second, "traffic", func() bool { return l.requests.Load() > 200 })

	// A slow request in flight on the endpoint about to be removed.
	victim := f.eps["stable-b"][1]
	victim.SetDelay(700 * time.Millisecond)
	var slow sync.WaitGroup
	slowStatus := 0
	slow.Add(1)
	go func() {
		defer slow.Done()
		for k := 0; k < 10000; k++ { // find a key that lands on stable-b
			req, _ := http.NewRequest("GET", f.url(), nil)
			req.Header.Set("X-User-ID", fmt.Sprintf("slow-%d", k))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				slowStatus = -1
				return
			}
			resp.Body.Close()
			if resp.Header.Get("X-Cellgate-Cell") == "stable-b" && victim.Requests() > 0 {
				slowStatus = resp.StatusCode
				return
			}
		}
	}()
	testwait.For(t, 10*time.Second, "a request in flight on the victim", func() bool { return victim.Requests() > 0 })

	extra, _ := democell.Start("stable-a", "v1")
	t.Cleanup(func() { extra.Close() })
	for round := range 6 {
		cells := map[string][]*democell.Server{
			"stable-a": append(append([]*democell.Server(nil), f.eps["stable-a"]...), extra),
			"stable-b": f.eps["stable-b"][:1], // victim removed
		}
		if round%2 == 1 {
			cells = f.eps // and back
		}
		// Every round also changes the upstream pool size, so every
		// endpoint gets a new pool beside the old one under load.
		f.writeConfig(t, fmt.Sprintf("[upstream]\nmax_conns_per_endpoint = %d\n", 512+round), cells)
		if err := f.node.Reload(); err != nil {
			t.Fatalf("reload %d: %v", round, err)
		}
	}
	slow.Wait()
	victim.SetDelay(0)
	testwait.For(t, 10*time.Second, "more traffic after the reloads", func() bool { return l.requests.Load() > 1500 })
	resent := l.resent(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across 6 reloads", n, l.requests.Load())
	}
	if resent != 0 { // a reload has no reason to close a client's connection
		t.Errorf("%d requests were resent on a keep-alive connection the proxy closed across 6 reloads", resent)
	}
	if slowStatus != 200 {
		t.Errorf("the in-flight request on a removed endpoint got %d, want 200", slowStatus)
	}
	t.Logf("6 reloads under load: %d requests, %d failed, %d resent on a stale keep-alive connection", l.requests.Load(), l.failed.Load(), resent)
}

// TestAdminThroughCtl drives the node's admin API with the real ctl client.
func TestAdminThroughCtl(t *testing.T) {
	f := startFileNode(t)
	for _, args := range [][]string{{"status"}, {"cells"}, {"-o", "json", "status"}, {"rollouts"}, {"audit"}} {
		if code, out, errOut := ctlRun(f, args...); code != 0 || out == "" {
			t.Fatalf("ctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, errOut := ctlRun(f, "weight", "stable-b", "50", "-reason", "test"); code != 0 {
		t.Fatalf("ctl weight: %d %s", code, errOut)
	}
	if w := f.node.Proxy().Weights()["stable-b"]; w != 50 {
		t.Fatalf("weight after ctl: %v", w)
	}
	if code, _, _ := ctlRun(f, "weight", "nope", "1"); code != 1 {
		t.Fatalf("weight on an unknown cell: exit %d, want 1", code)
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	os.WriteFile(plan, []byte(`{"name":"p","targets":["stable-b"],"baseline":["stable-a"],"steps":[50,100],"bake":"1h"}`), 0o644)
	code, out, errOut := ctlRun(f, "-o", "json", "rollout", "start", plan)
	if code != 0 || !strings.Contains(out, `"progressing"`) {
		t.Fatalf("rollout start: %d %s %s", code, out, errOut)
	}
	if code, _, _ := ctlRun(f, "rollout", "start", plan); code != 1 {
		t.Fatalf("an overlapping plan was not refused (exit %d)", code)
	}
	id := f.node.Controller().Active()[0]
	for _, act := range []string{"pause", "resume", "abort"} {
		if code, _, errOut := ctlRun(f, act, id); code != 0 {
			t.Fatalf("ctl %s: %d %s", act, code, errOut)
		}
	}
	_, out, _ = ctlRun(f, "-o", "json", "audit")
	for _, want := range []string{`"set_weight"`, `"start"`, `"pause"`, `"abort"`, `"admin:loopback"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	if resp, err := http.Get(f.url()); err == nil {
		resp.Body.Close()
	}
	want := []string{"cellgate_requests_total", "cellgate_cell_weight", "cellgate_upstream_endpoint_up",
		"cellgate_request_duration_seconds", "cellgate_ttfb_seconds", "cellgate_slo_burn_rate", "cellgate_rollout_step",
		`cellgate_rollout_state{state="aborted"} 1`}
	var body bytes.Buffer
	// The request is recorded as it finishes, on the loop core just after
	// the client has its answer: wait for it (a hang guard, not a time).
	testwait.For(t, 20*time.Second, "the request in /metrics", func() bool {
		resp, err := http.Get("http://" + f.node.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body.Reset()
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		return strings.Contains(body.String(), "cellgate_requests_total")
	})
	for _, m := range want {
		if !strings.Contains(body.String(), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}
