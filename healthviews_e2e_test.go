package cellgate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestHealthViewsSharedByGossip: three nodes over real memberlist on
// loopback route to cell "edge" through an endpoint of their own (as
// nodes in different zones reach a cell by different paths). When only
// node-2's endpoint dies, node-2 alone takes edge down — each node decides
// from its own evidence — and every node's /v1/status shows all three
// views: edge down in node-2's (its endpoint out by check) and up in the
// others'. When the endpoint is back, every view shows edge up again.
func TestHealthViewsSharedByGossip(t *testing.T) {
	stable, err := democell.Start("stable", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stable.Close() })
	names := []string{"node-1", "node-2", "node-3"}
	edges := make([]*democell.Server, len(names))
	nodes := make([]*cluster, len(names))
	join := ""
	for i, name := range names {
		if edges[i], err = democell.Start("edge", "v1"); err != nil {
			t.Fatal(err)
		}
		e := edges[i]
		t.Cleanup(func() { e.Close() })
		nodes[i] = startFromText(t, testtoml.Head(name, filepath.Join(t.TempDir(), "j.db"))+`[rollout]
tick = "200ms"
`+testtoml.Gossip(join)+testtoml.Cell("stable", "", 100, stable.Addr())+testtoml.Cell("edge", "", 100, e.Addr())+
			`health = { interval = "500ms", timeout = "500ms", unhealthy = 2, healthy = 1 }
`)
		if join == "" {
			join = nodes[i].node.GossipAddr()
		}
	}
	// views reads node at's /v1/status: cell edge in each node's view.
	views := func(at *cluster) map[string]admin.CellHealthView {
		resp, err := http.Get("http://" + at.node.AdminAddr() + "/v1/status")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var doc admin.StatusDoc
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("status: %v\n%s", err, body)
		}
		out := map[string]admin.CellHealthView{}
		for _, v := range doc.HealthViews {
			if v.Self != (v.Node == at.node.Name()) {
				t.Fatalf("%s's status marks %s self=%v", at.node.Name(), v.Node, v.Self)
			}
			for _, c := range v.Cells {
				if c.Name == "edge" {
					out[v.Node] = c
				}
			}
		}
		return out
	}
	// agree waits until every node shows every node's view with edge up
	// on exactly the nodes of up.
	agree := func(what string, up map[string]bool) {
		t.Helper()
		start := time.Now()
		testwait.For(t, 30*time.Second, what, func() bool {
			for _, at := range nodes {
				v := views(at)
				if len(v) != len(names) {
					return false
				}
				for _, name := range names {
					c := v[name]
					if c.Up != up[name] || c.Endpoints != 1 || (c.InRotation == 1) != up[name] {
						return false
					}
					if !up[name] && (len(c.Out) != 1 || c.Out[0].Why != "check") {
						return false
					}
				}
			}
			return true
		})
		t.Logf("%s: every node showed it after %v", what, time.Since(start).Round(time.Millisecond))
	}
	agree("every view with edge up", map[string]bool{"node-1": true, "node-2": true, "node-3": true})

	addr := edges[1].Addr()
	edges[1].Kill()
	agree("edge down in node-2's view only", map[string]bool{"node-1": true, "node-2": false, "node-3": true})
	if v := views(nodes[0])["node-2"]; v.Out[0].Addr != addr {
		t.Fatalf("node-2's view lists %q out, want %q", v.Out[0].Addr, addr)
	}
	for i, n := range nodes {
		if up := n.node.Proxy().CellUp("edge"); up != (i != 1) {
			t.Fatalf("%s routes with edge up=%v: a peer's view changed its own decision", names[i], up)
		}
	}

	back, err := democell.StartAt("edge", "v1", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	agree("every view with edge up again", map[string]bool{"node-1": true, "node-2": true, "node-3": true})
}
