package cellgate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestStatusMemberAddrs: /v1/status lists each cluster member with the
// gossip address it is reachable at (it was always empty).
func TestStatusMemberAddrs(t *testing.T) {
	node := func(name, join string) *cluster {
		return startFromText(t, testtoml.Head(name, filepath.Join(t.TempDir(), "j.db"))+testtoml.Gossip(join)+testtoml.Cell("a", "", 1, "127.0.0.1:1"))
	}
	n1 := node("node-1", "")
	n2 := node("node-2", n1.node.GossipAddr())
	want := map[string]string{"node-1": n1.node.GossipAddr(), "node-2": n2.node.GossipAddr()}
	var got map[string]string
	testwait.For(t, 10*time.Second, "both members with their addresses on /v1/status", func() bool {
		got = map[string]string{}
		resp, err := http.Get("http://" + n1.node.AdminAddr() + "/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var doc admin.StatusDoc
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("status: %v\n%s", err, body)
		}
		for _, m := range doc.Members {
			got[m.Name] = m.Addr
		}
		return len(got) == 2 && got["node-1"] == want["node-1"] && got["node-2"] == want["node-2"]
	})
	for name, addr := range got {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("member %s at %q", name, addr)
		}
	}
}

// TestLongIDNotEchoed: a 100 KB rollout id or cell name is answered 404
// without being echoed back; a short unknown id is echoed, quoted.
func TestLongIDNotEchoed(t *testing.T) {
	c := startCluster(t, "", cellDef{name: "a", version: "v1", weight: 1})
	long := strings.Repeat("x", 100<<10)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/rollouts/" + long, ""},
		{"POST", "/v1/rollouts/" + long + "/pause", "{}"},
		{"PUT", "/v1/cells/" + long + "/weight", `{"weight": 1}`},
		{"GET", "/v1/" + long, ""},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+c.node.AdminAddr()+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || len(body) > 2048 {
			t.Errorf("%s %s…: status %d, %d-byte answer; want 404 without the id", tc.method, tc.path[:20], resp.StatusCode, len(body))
		}
	}
	resp, err := http.Get("http://" + c.node.AdminAddr() + "/v1/rollouts/nope-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), `nope-1`) {
		t.Errorf("unknown short id: status %d, %s", resp.StatusCode, body)
	}
}
