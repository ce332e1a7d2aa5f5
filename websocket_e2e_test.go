package cellgate_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/internal/wsecho"
	"github.com/cellgate/cellgate/rollout"
)

// wsCluster is a node whose three cells are real WebSocket upstreams
// (gorilla/websocket's server): stable-a and stable-b at 100, canary-1 at
// canaryWeight.
type wsCluster struct {
	*cluster
	ups map[string]*wsecho.Server
}

func startWSCluster(t *testing.T, canaryWeight float64) *wsCluster {
	t.Helper()
	w := &wsCluster{ups: map[string]*wsecho.Server{}}
	var b strings.Builder
	b.WriteString(testtoml.Head("ws-1", filepath.Join(t.TempDir(), "journal.db"), `drain_timeout = "5s"`) + `[routing]
sticky_key = ["header:X-User-ID"]
tunnel_drain = "100ms"
` + sloTable("10s") + `[rollout]
tick = "200ms"
degraded_ticks = 3
`)
	for _, c := range []struct {
		name, version string
		weight        float64
	}{{"stable-a", "v1", 100}, {"stable-b", "v1", 100}, {"canary-1", "v2", canaryWeight}} {
		s := wsecho.Start(c.name)
		t.Cleanup(s.Close)
		w.ups[c.name] = s
		b.WriteString(testtoml.Cell(c.name, c.version, c.weight, s.Addr))
	}
	w.cluster = startFromText(t, b.String())
	return w
}

// cellOf asks the node which cell serves user, with a plain GET.
func (w *wsCluster) cellOf(t *testing.T, user string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", w.url(), nil)
	req.Header.Set("X-User-ID", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Cellgate-Cell")
}

// userOn finds one of the users ws-user-0 … ws-user-199 that the node
// routes to cell.
func (w *wsCluster) userOn(t *testing.T, cell string) string {
	t.Helper()
	for i := range 200 {
		if u := fmt.Sprint("ws-user-", i); w.cellOf(t, u) == cell {
			return u
		}
	}
	t.Fatalf("none of 200 users is routed to %s", cell)
	return ""
}

// dial opens a WebSocket through the node as user and returns it with the
// cell that answered the handshake.
func (w *wsCluster) dial(t *testing.T, user string) (*websocket.Conn, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial("ws://"+w.node.Addr()+"/echo", http.Header{"X-User-ID": {user}})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp.Header.Get("X-Cellgate-Cell")
}

// echo sends n messages on c and checks each comes back unchanged.
func echo(t *testing.T, c *websocket.Conn, n int) {
	t.Helper()
	for i := range n {
		msg := []byte(fmt.Sprintf("message %d %s", i, strings.Repeat("x", i%300)))
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
}

// awaitClose reads until c is closed and returns the close code (0 for an
// end without a close frame).
func awaitClose(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		t.Logf("tunnel ended without a close frame: %v", err)
		return 0
	}
}

// scrape returns the value of one series from the node's /metrics (-1 when
// absent).
func (w *wsCluster) scrape(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + w.node.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return -1
}

// TestWebSocketRevertMovesTunnels is a canary release with WebSocket users:
// a user whose key the rollout moved to the canary opens a tunnel there
// (sticky by X-User-ID: a second handshake lands there too) and exchanges
// 1000 echoed messages; then the canary's plain requests fail, the SLO
// judge reverts the rollout, the canary's tunnel gets close 1012 after
// routing.tunnel_drain, and the client's reconnect lands on the baseline
// cell it had before the rollout. Tunnel metrics follow on /metrics.
func TestWebSocketRevertMovesTunnels(t *testing.T) {
	w := startWSCluster(t, 0)
	baseline := map[string]string{}
	for i := range 200 {
		u := fmt.Sprint("ws-user-", i)
		baseline[u] = w.cellOf(t, u)
	}
	id, err := w.node.Controller().Start(rollout.Plan{
		Name: "ws-canary", Strategy: rollout.StrategyCanary,
		Targets: []string{"canary-1"}, Baseline: []string{"stable-a", "stable-b"},
		Steps: []float64{50, 100}, Bake: rollout.Duration(time.Hour), MinRequests: 20,
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "canary at 50%", func() bool { return w.node.Proxy().Weights()["canary-1"] > 0 })
	user := w.userOn(t, "canary-1")

	c, cell := w.dial(t, user)
	if cell != "canary-1" {
		t.Fatalf("handshake of %s went to %q, want canary-1 (where its requests go)", user, cell)
	}
	echo(t, c, 1000)
	again, cell := w.dial(t, user)
	if cell != "canary-1" {
		t.Fatalf("second handshake of %s went to %q: not sticky", user, cell)
	}
	again.Close()
	testwait.For(t, 10*time.Second, "one canary tunnel open", func() bool {
		return w.scrape(t, `cellgate_tunnels{cell="canary-1"}`) == 1
	})
	if v := w.scrape(t, `cellgate_tunnels_total{cell="canary-1",code="101"}`); v != 2 {
		t.Fatalf("cellgate_tunnels_total{cell=canary-1,code=101} = %v, want 2", v)
	}

	// The canary breaks; ordinary keyed traffic lets the judge see it.
	w.ups["canary-1"].SetPlainStatus(http.StatusInternalServerError)
	l := startLoad(t, w.url(), 300, 2000)
	v := waitTerminal(t, w.cluster, id, 30*time.Second)
	l.stop()
	if v.Status != rollout.StatusRolledBack {
		t.Fatalf("rollout %s (%s), want rolled_back; decisions:\n%s", v.Status, v.Reason, decisions(v))
	}
	if code := awaitClose(t, c); code != 1012 {
		t.Fatalf("canary tunnel after the revert: close code %d, want 1012", code)
	}
	back, cell := w.dial(t, user)
	if cell != baseline[user] {
		t.Fatalf("reconnect of %s went to %q, want its baseline cell %q", user, cell, baseline[user])
	}
	echo(t, back, 10)
	testwait.For(t, 10*time.Second, "no canary tunnel open", func() bool {
		return w.scrape(t, `cellgate_tunnels{cell="canary-1"}`) == 0
	})
	if v := w.scrape(t, fmt.Sprintf(`cellgate_tunnels{cell=%q}`, baseline[user])); v != 1 {
		t.Fatalf("cellgate_tunnels{cell=%s} = %v, want 1", baseline[user], v)
	}
}

// TestWebSocketManualZeroMovesTunnels: an operator's weight 0 through the
// admin API closes the cell's tunnels with 1012 like a revert does.
func TestWebSocketManualZeroMovesTunnels(t *testing.T) {
	w := startWSCluster(t, 100)
	user := w.userOn(t, "canary-1")
	c, _ := w.dial(t, user)
	echo(t, c, 10)
	req, _ := http.NewRequest("PUT", "http://"+w.node.AdminAddr()+"/v1/cells/canary-1/weight",
		strings.NewReader(`{"weight": 0, "reason": "websocket test"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT weight: %s", resp.Status)
	}
	if code := awaitClose(t, c); code != 1012 {
		t.Fatalf("close code %d, want 1012", code)
	}
	if _, cell := w.dial(t, user); cell == "canary-1" || cell == "" {
		t.Fatalf("reconnect went to %q", cell)
	}
}
