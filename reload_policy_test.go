package cellgate_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/testcert"
)

// reloadExpectRefused writes next, reloads through ctl and checks the
// reload failed with all of want in its message, config_generation did
// not move and response_headers = false riding along was not applied.
func reloadExpectRefused(t *testing.T, e *keyEnv, next configs.Config, want ...string) {
	t.Helper()
	next.Routing.ResponseHeaders = false
	e.write(t, &next)
	gen := e.generation(t)
	code, out, errOut := ctlRun(e.fileNode(), "reload")
	if code == 0 {
		t.Fatalf("reload succeeded: %s", out)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("reload error lacks %q: %s", w, errOut)
		}
	}
	if g := e.generation(t); g != gen {
		t.Errorf("a failed reload moved config_generation %d → %d", gen, g)
	}
	if e.get(t, "k").Header.Get("X-Cellgate-Cell") == "" {
		t.Error("a failed reload applied routing.response_headers = false from the same file")
	}
}

// TestReloadFailureKeepsOldConfig: when applying fails (here the
// controller cannot journal the new cell set), the whole reload fails and
// says so; no part of the new file is applied — not the cell weights, not
// the routing settings — and config_generation stays.
func TestReloadFailureKeepsOldConfig(t *testing.T) {
	e := newKeyEnv(t, nil)
	if err := e.node().Controller().Close(); err != nil {
		t.Fatal(err)
	}
	next := e.cfg
	next.Cells = append([]configs.Cell(nil), e.cfg.Cells...)
	next.Cells[1].Weight = 0
	reloadExpectRefused(t, e, next, "reload failed, the old config keeps running", "controller did not take the new cell set")
	if w := e.node().Proxy().Weights()["stable-b"]; w != 100 {
		t.Errorf("stable-b's weight after a failed reload: %v, want 100", w)
	}
}

// TestReloadSLOWindowGrowthRefused: SLO windows longer than the running
// engine keeps history for need a restart; the reload names the window.
func TestReloadSLOWindowGrowthRefused(t *testing.T) {
	e := newKeyEnv(t, nil)
	next := e.cfg
	next.SLO.SlowBurn.Long = configs.D(12 * time.Hour)
	reloadExpectRefused(t, e, next, "slo.slow_burn.long grew", "needs a restart")
}

// TestReloadTLSOnOffRefused: turning TLS on needs a restart (renewing the
// certificate of a TLS listener is a hot key: TestReloadEveryKey).
func TestReloadTLSOnOffRefused(t *testing.T) {
	e := newKeyEnv(t, nil)
	next := e.cfg
	next.Listen.TLSCert, next.Listen.TLSKey, _ = testcert.Write(t, e.dir, "on")
	reloadExpectRefused(t, e, next, "listen.tls_cert turned TLS on or off", "needs a restart")
}

// fileCase is a node started with a file a key names: key is what the
// reload's error must name, file where the node's file is.
type fileCase struct {
	key  string
	base func(*configs.Config, *keyEnv)
	file func(*configs.Config) string
}

var (
	pinSecretCase = fileCase{"routing.pin_secret_file", func(c *configs.Config, e *keyEnv) {
		c.Routing.PinMemory = 2 << 20
		c.Routing.PinSecretFile = e.writeFile("pin.key", "0123456789abcdef0123456789abcdef\n")
	}, func(c *configs.Config) string { return c.Routing.PinSecretFile }}
	gossipSecretCase = fileCase{"gossip.secret_key_file", func(c *configs.Config, e *keyEnv) {
		c.Gossip.Bind = "127.0.0.1:0"
		c.Gossip.SecretKeyFile = e.writeFile("gossip.key", "0123456789abcdef0123456789abcdef\n")
	}, func(c *configs.Config) string { return c.Gossip.SecretKeyFile }}
)

// TestReloadMissingFileRefused: a file a key names is read during the
// reload; when it is gone the reload fails naming the key, instead of
// being accepted and breaking the next start.
func TestReloadMissingFileRefused(t *testing.T) {
	for _, tc := range []fileCase{
		pinSecretCase,
		{"admin.token_file", func(c *configs.Config, e *keyEnv) {
			c.Admin.TokenFile = e.writeFile("tokens", "ops:s3cret-token-value\n")
		}, func(c *configs.Config) string { return c.Admin.TokenFile }},
		gossipSecretCase,
		{"listen.tls_cert", withTLS, func(c *configs.Config) string { return c.Listen.TLSCert }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			e := newKeyEnv(t, tc.base)
			if e.cfg.Admin.TokenFile != "" {
				t.Setenv("CELLGATE_TOKEN", "s3cret-token-value")
			}
			if err := os.Remove(tc.file(&e.cfg)); err != nil {
				t.Fatal(err)
			}
			reloadExpectRefused(t, e, e.cfg, tc.key, "no such file")
		})
	}
}

// TestPlanDefaultsAndPlansByName: [rollout] bake and min_requests are the
// defaults of plans that leave them out — posted ones and the config's —
// from the start, and a [[plan]] starts by name.
func TestPlanDefaultsAndPlansByName(t *testing.T) {
	e := newKeyEnv(t, func(c *configs.Config, _ *keyEnv) {
		c.Rollout.Bake, c.Rollout.MinRequests = configs.D(2*time.Second), 7
		c.Plans = []map[string]any{{"name": "cfgplan", "targets": []any{"stable-b"}, "baseline": []any{"stable-a"}}}
	})
	p := e.startPlan(t, `{"name":"cfgplan"}`)
	if p["bake"] != "2s" || p["min_requests"] != 7.0 || p["name"] != "cfgplan" {
		t.Errorf("the config's plan started as %v", p)
	}
	abortAll(t, e)
	p = e.startPlan(t, `{"name":"posted","targets":["stable-b"],"baseline":["stable-a"],"bake":"1h"}`)
	if p["bake"] != "1h0m0s" && p["bake"] != "1h" || p["min_requests"] != 7.0 {
		t.Errorf("a posted plan with its own bake started as bake %v, min_requests %v", p["bake"], p["min_requests"])
	}
	resp, err := http.Post("http://"+e.node().AdminAddr()+"/v1/rollouts", "application/json", strings.NewReader(`{"name":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("starting an unknown config plan by name: %d, want 404", resp.StatusCode)
	}
}

// abortAll aborts the node's running rollouts.
func abortAll(t *testing.T, e *keyEnv) {
	t.Helper()
	for _, id := range e.node().Controller().Active() {
		if err := e.node().Controller().Abort(id, "test", "next case"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReloadServerSwapKeepsOpenConnections: a reload that changes the
// client-side timeouts puts a new HTTP server beside the old one; a
// keep-alive connection opened before it is still served, by the old
// server, and a new connection is served too. Shutdown then drains both.
func TestReloadServerSwapKeepsOpenConnections(t *testing.T) {
	e := newKeyEnv(t, nil)
	old := e.rawConn(t)
	br := bufio.NewReader(old)
	ask := func(c net.Conn, br *bufio.Reader, what string) {
		t.Helper()
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", what, resp.StatusCode)
		}
	}
	ask(old, br, "before the reload")
	for i, d := range []time.Duration{7 * time.Second, 8 * time.Second} { // two swaps
		next := e.cfg
		next.Listen.ReadTimeout = configs.D(d)
		e.write(t, &next)
		if err := e.node().Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		ask(old, br, fmt.Sprintf("the connection opened before reload %d", i))
		fresh := e.rawConn(t)
		ask(fresh, bufio.NewReader(fresh), fmt.Sprintf("a connection opened after reload %d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node().Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with retired servers: %v", err)
	}
	if got, err := readAll(old); err != nil {
		t.Errorf("shutdown left the old server's connection open: %v (read %q)", err, got)
	}
}

// TestReloadNewKeyInSameFileRefused: a secret rotated inside the same file
// is a change of the key, refused by name like a new path: every node of
// the fleet must switch together, so it takes a restart.
func TestReloadNewKeyInSameFileRefused(t *testing.T) {
	for _, tc := range []fileCase{pinSecretCase, gossipSecretCase} {
		t.Run(tc.key, func(t *testing.T) {
			e := newKeyEnv(t, tc.base)
			if err := os.WriteFile(tc.file(&e.cfg), []byte("fedcba9876543210fedcba9876543210\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			reloadExpectRefused(t, e, e.cfg, tc.key+" holds a different key", "needs a restart")
		})
	}
}

// TestReloadTickOnFleetRefused: on a fleet node the SLI export runs at
// rollout.tick too, so a new tick there needs a restart (on a single node
// it is hot: TestReloadEveryKey).
func TestReloadTickOnFleetRefused(t *testing.T) {
	e := newKeyEnv(t, withGossip)
	next := e.cfg
	next.Rollout.Tick = configs.D(250 * time.Millisecond)
	reloadExpectRefused(t, e, next, "rollout.tick changed on a fleet node", "needs a restart")
}
