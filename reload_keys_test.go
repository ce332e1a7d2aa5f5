package cellgate_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/gorilla/websocket"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testcert"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/internal/wsecho"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/slo"
)

// keyRow is one config key in TestReloadEveryKey: what a reload does when
// the key changes on a running node, and how the test sees that it did.
//
// Adding a key to the schema (configs.Config) makes TestReloadEveryKey fail
// until it has a row here. To add one:
//   - key: the dotted TOML path as configs.Keys lists it ("routing.seed",
//     "cell.weight", "slo.fast_burn.long").
//   - hot: true when a reload applies it (reload.go hotKeys), false when a
//     reload refuses it with "needs a restart" naming the key (restartKeys).
//   - base (optional): how the node starts, when the key only shows on a
//     node set up for it (TLS on, pins on, cookies on).
//   - edit: the change; it must leave the config valid (the reload would
//     otherwise fail validation, not the reload policy).
//   - check (hot rows): observe the new value on the running node —
//     through a request and the response where the key is visible there,
//     otherwise through the part that reads it (SLO config, controller
//     tuning, proxy options). Refused rows need no check: the test proves
//     the reload failed naming the key, kept the config generation, and
//     applied nothing else from the same file.
//
// Rows run in parallel (they wait on their node far more than they
// compute), so a row keeps to its own keyEnv: no process-wide state, no
// fixed port that a reload would bind.
type keyRow struct {
	key   string
	hot   bool
	base  func(c *configs.Config, e *keyEnv)
	edit  func(c *configs.Config, e *keyEnv)
	check func(t *testing.T, e *keyEnv)
}

// keyRows holds one row per config key; see keyRow for how to add one.
var keyRows = []keyRow{
	{key: "node_name", edit: func(c *configs.Config, _ *keyEnv) { c.NodeName = "renamed" }},

	{key: "listen.addr", edit: func(c *configs.Config, _ *keyEnv) { c.Listen.Addr = "127.0.0.1:1" }},
	{key: "listen.read_timeout", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Listen.ReadTimeout = configs.D(100 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			c := e.rawConn(t)
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")); err != nil { // and never the blank line
				t.Fatal(err)
			}
			if got, err := readAll(c); err != nil {
				t.Errorf("a request head left unfinished past read_timeout was not cut: %v (read %q)", err, got)
			}
		}},
	{key: "listen.write_timeout", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Listen.WriteTimeout = configs.D(1234 * time.Millisecond) },
		check: all(optionIs(func(o proxy.Options) any { return o.WriteTimeout }, 1234*time.Millisecond, "responses are written within"), serves)},
	{key: "listen.idle_timeout", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Listen.IdleTimeout = configs.D(100 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			c := e.rawConn(t)
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200") {
				t.Errorf("a keep-alive connection idle past idle_timeout was not closed after its response: %v (read %q)", err, got)
			}
		}},
	{key: "listen.max_request_body", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Listen.MaxRequestBody = 1000 },
		check: func(t *testing.T, e *keyEnv) {
			resp, err := e.client.Post(e.scheme+"://"+e.node().Addr()+"/", "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("a 2000-byte body under max_request_body = 1000: %d, want 413", resp.StatusCode)
			}
		}},
	{key: "listen.max_header_bytes", edit: func(c *configs.Config, _ *keyEnv) { c.Listen.MaxHeaderBytes = 8 << 10 }},
	{key: "listen.max_conns", edit: func(c *configs.Config, _ *keyEnv) { c.Listen.MaxConns = 17 }},
	// From the default "auto" (the loop core on Linux) to the goroutine
	// core: a change of the core serving the listener.
	{key: "listen.core", edit: func(c *configs.Config, _ *keyEnv) { c.Listen.Core = configs.CoreGoroutine }},
	{key: "listen.drain_timeout", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Listen.DrainTimeout = configs.D(1234 * time.Millisecond) },
		check: optionIs(func(o proxy.Options) any { return o.DrainTimeout }, 1234*time.Millisecond, "the proxy drains within")},
	{key: "listen.tunnel_idle_timeout", hot: true, base: withWebSockets,
		edit: func(c *configs.Config, _ *keyEnv) { c.Listen.TunnelIdleTimeout = configs.D(100 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			if code := awaitClose(t, e.dialWS(t)); code != websocket.CloseGoingAway {
				t.Errorf("an idle tunnel past tunnel_idle_timeout ended with %d, want 1001", code)
			}
		}},
	{key: "listen.tls_cert", hot: true, base: withTLS, edit: renewCert, check: servesRenewedCert},
	{key: "listen.tls_key", hot: true, base: withTLS, edit: renewCert, check: servesRenewedCert},

	{key: "upstream.connect_timeout", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Upstream.ConnectTimeout = configs.D(1234 * time.Millisecond) },
		check: optionIs(func(o proxy.Options) any { return o.ConnectTimeout }, 1234*time.Millisecond, "new upstream connections dial within")},
	{key: "upstream.response_timeout", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Upstream.ResponseTimeout = configs.D(50 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			e.a1.SetDelay(time.Second)
			e.b1.SetDelay(time.Second)
			if r := e.get(t, "k"); r.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("a 1 s upstream under a 50 ms response_timeout: %d %s", r.StatusCode, r.Header.Get("X-Cellgate-Error"))
			}
		}},
	{key: "upstream.idle_timeout", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Upstream.IdleTimeout = configs.D(1234 * time.Millisecond) },
		check: all(optionIs(func(o proxy.Options) any { return o.MaxIdleConnDuration }, 1234*time.Millisecond, "upstream pools close idle connections after"), serves)},
	{key: "upstream.max_conns_per_endpoint", hot: true, base: onlyStableA,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Upstream.MaxConnsPerEndpoint = 1 },
		check: oneConnPerEndpoint},
	{key: "upstream.eject_after", hot: true, base: onlyStableA,
		edit: func(c *configs.Config, _ *keyEnv) { c.Upstream.EjectAfter = 1 },
		check: func(t *testing.T, e *keyEnv) {
			e.a1.SetErrorRatio(1)
			if r := e.get(t, "k"); r.StatusCode != 500 {
				t.Fatalf("the failing upstream's answer: %d", r.StatusCode)
			}
			if r := e.get(t, "k"); r.Header.Get("X-Cellgate-Error") != "no-healthy-endpoint" {
				t.Errorf("after one 5xx with eject_after = 1: %d %q, want the endpoint ejected", r.StatusCode, r.Header.Get("X-Cellgate-Error"))
			}
		}},
	{key: "upstream.eject_backoff", hot: true,
		edit:  func(c *configs.Config, _ *keyEnv) { c.Upstream.EjectBackoff = configs.D(1234 * time.Millisecond) },
		check: optionIs(func(o proxy.Options) any { return o.EjectBackoff }, 1234*time.Millisecond, "ejections last")},

	{key: "admin.addr", edit: func(c *configs.Config, _ *keyEnv) { c.Admin.Addr = "127.0.0.1:1" }},
	{key: "admin.token_file", hot: true,
		edit: func(c *configs.Config, e *keyEnv) {
			c.Admin.TokenFile = e.writeFile("tokens", "ops:s3cret-token-value\n")
		},
		check: func(t *testing.T, e *keyEnv) {
			resp, err := http.Post("http://"+e.node().AdminAddr()+"/v1/signals", "application/json",
				strings.NewReader(`{"cell":"stable-a","name":"q","value":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("a mutation without the new token: %d, want 401", resp.StatusCode)
			}
		}},

	{key: "state.path", edit: func(c *configs.Config, e *keyEnv) { c.State.Path = filepath.Join(e.dir, "other.db") }},
	{key: "state.audit_retention.age", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.State.AuditRetention.Age = configs.D(48 * time.Hour) },
		check: func(t *testing.T, e *keyEnv) {
			if r := e.node().Controller().AuditRetention(); r.MaxAge != 48*time.Hour {
				t.Errorf("the controller keeps audit events for %v", r.MaxAge)
			}
		}},
	{key: "state.audit_retention.events", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.State.AuditRetention.Events = 123 },
		check: func(t *testing.T, e *keyEnv) {
			if r := e.node().Controller().AuditRetention(); r.MaxEvents != 123 {
				t.Errorf("the controller keeps %d audit events", r.MaxEvents)
			}
		}},

	{key: "routing.sticky_key", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.StickyKey = []string{"query:u"} },
		check: func(t *testing.T, e *keyEnv) {
			for _, u := range []string{"alice", "bob", "carol"} {
				cells := map[string]bool{}
				for range 16 {
					cells[e.getWith(t, "/?u="+u).Header.Get("X-Cellgate-Cell")] = true
				}
				if len(cells) != 1 {
					t.Errorf("key %s from query:u went to %v; want one cell", u, cells)
				}
			}
		}},
	{key: "routing.response_headers", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.ResponseHeaders = false },
		check: func(t *testing.T, e *keyEnv) {
			if r := e.get(t, "k"); r.Header.Get("X-Cellgate-Cell") != "" || r.Header.Get("X-Cellgate-Version") != "" {
				t.Errorf("response_headers = false, and the response still says %q", r.Header.Get("X-Cellgate-Cell"))
			}
		}},
	{key: "routing.set_cookie", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.SetCookie = true },
		check: func(t *testing.T, e *keyEnv) {
			if sc := e.get(t, "").Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "cellgate=") {
				t.Errorf("a keyless request after set_cookie = true got Set-Cookie %q", sc)
			}
		}},
	{key: "routing.cookie_name", hot: true,
		base: func(c *configs.Config, _ *keyEnv) { c.Routing.SetCookie = true },
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.CookieName = "cg2" },
		check: func(t *testing.T, e *keyEnv) {
			if sc := e.get(t, "").Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "cg2=") {
				t.Errorf("a keyless request after cookie_name = cg2 got Set-Cookie %q", sc)
			}
		}},
	{key: "routing.trusted_proxies", hot: true,
		base: func(c *configs.Config, _ *keyEnv) { c.Routing.StickyKey = []string{"ip"} },
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.TrustedProxies = []string{"127.0.0.0/8"} },
		check: func(t *testing.T, e *keyEnv) {
			cells := map[string]bool{}
			for i := range 32 {
				cells[e.getWith(t, "/", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i)).Header.Get("X-Cellgate-Cell")] = true
			}
			if len(cells) != 2 {
				t.Errorf("32 forwarded client addresses from a trusted proxy went to %v; want both cells", cells)
			}
		}},
	{key: "routing.tunnel_drain", hot: true, base: withWebSockets,
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.TunnelDrain = configs.D(50 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			ws := e.dialWS(t)
			if err := e.node().SetWeight("stable-b", 100, "test", "move"); err != nil {
				t.Fatal(err)
			}
			if err := e.node().SetWeight("stable-a", 0, "test", "move"); err != nil {
				t.Fatal(err)
			}
			if code := awaitClose(t, ws); code != websocket.CloseServiceRestart {
				t.Errorf("a tunnel on a cell taken to 0 ended with %d, want 1012", code)
			}
		}},
	{key: "routing.seed", edit: func(c *configs.Config, _ *keyEnv) { c.Routing.Seed = 42 }},
	{key: "routing.pin_memory", edit: func(c *configs.Config, _ *keyEnv) { c.Routing.PinMemory = 2 << 20 }},
	{key: "routing.pin_idle", edit: func(c *configs.Config, _ *keyEnv) { c.Routing.PinIdle = configs.D(time.Minute) }},
	{key: "routing.pin_secret_file", edit: func(c *configs.Config, e *keyEnv) {
		c.Routing.PinSecretFile = e.writeFile("pin.key", "0123456789abcdef0123456789abcdef\n")
	}},

	{key: "cell.name", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Cells[1].Name = "stable-c" },
		check: func(t *testing.T, e *keyEnv) {
			if cells := e.spread(t, 32); !cells["stable-c"] || cells["stable-b"] {
				t.Errorf("after renaming stable-b to stable-c, 32 keys went to %v", cells)
			}
		}},
	{key: "cell.version", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Cells[0].Version = "v9" },
		check: func(t *testing.T, e *keyEnv) {
			for k := range 32 {
				r := e.get(t, fmt.Sprint(k))
				if r.Header.Get("X-Cellgate-Cell") == "stable-a" {
					if v := r.Header.Get("X-Cellgate-Version"); v != "v9" {
						t.Errorf("stable-a answers as version %q, want v9", v)
					}
					return
				}
			}
			t.Error("no key of 32 reached stable-a")
		}},
	{key: "cell.weight", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Cells[1].Weight = 0 },
		check: func(t *testing.T, e *keyEnv) {
			if cells := e.spread(t, 32); len(cells) != 1 || !cells["stable-a"] {
				t.Errorf("stable-b at weight 0, and 32 keys went to %v", cells)
			}
		}},
	{key: "cell.endpoints", hot: true,
		edit: func(c *configs.Config, e *keyEnv) { c.Cells[0].Endpoints = []string{e.a2.Addr()} },
		check: func(t *testing.T, e *keyEnv) {
			before := e.a1.Requests()
			e.spread(t, 32)
			if e.a2.Requests() == 0 || e.a1.Requests() != before {
				t.Errorf("stable-a moved to a second server: it got %d requests, the first %d more", e.a2.Requests(), e.a1.Requests()-before)
			}
		}},

	sloRow("slo.availability", func(c *configs.SLO) { c.Availability = 0.95 }, func(c slo.Config) bool { return c.Availability == 0.95 }),
	sloRow("slo.latency_threshold", func(c *configs.SLO) { c.LatencyThreshold = configs.D(123 * time.Millisecond) },
		func(c slo.Config) bool { return c.LatencyThreshold == 123*time.Millisecond }),
	sloRow("slo.latency_objective", func(c *configs.SLO) { c.LatencyObjective = 0.9 }, func(c slo.Config) bool { return c.LatencyObjective == 0.9 }),
	sloRow("slo.ttfb_threshold", func(c *configs.SLO) { c.TTFBThreshold = configs.D(50 * time.Millisecond); c.TTFBObjective = 0.9 },
		func(c slo.Config) bool { return c.TTFBThreshold == 50*time.Millisecond }),
	sloRow("slo.ttfb_objective", func(c *configs.SLO) { c.TTFBThreshold = configs.D(50 * time.Millisecond); c.TTFBObjective = 0.8 },
		func(c slo.Config) bool { return c.TTFBObjective == 0.8 }),
	sloRow("slo.fast_burn.long", func(c *configs.SLO) { c.FastBurn.Long = configs.D(30 * time.Minute) },
		func(c slo.Config) bool { return c.FastBurn.Long == 30*time.Minute }),
	sloRow("slo.fast_burn.short", func(c *configs.SLO) { c.FastBurn.Short = configs.D(time.Minute) },
		func(c slo.Config) bool { return c.FastBurn.Short == time.Minute }),
	sloRow("slo.fast_burn.rate", func(c *configs.SLO) { c.FastBurn.Rate = 10 }, func(c slo.Config) bool { return c.FastBurn.Rate == 10 }),
	sloRow("slo.slow_burn.long", func(c *configs.SLO) { c.SlowBurn.Long = configs.D(3 * time.Hour) },
		func(c slo.Config) bool { return c.SlowBurn.Long == 3*time.Hour }),
	sloRow("slo.slow_burn.short", func(c *configs.SLO) { c.SlowBurn.Short = configs.D(10 * time.Minute) },
		func(c slo.Config) bool { return c.SlowBurn.Short == 10*time.Minute }),
	sloRow("slo.slow_burn.rate", func(c *configs.SLO) { c.SlowBurn.Rate = 3 }, func(c slo.Config) bool { return c.SlowBurn.Rate == 3 }),
	sloRow("slo.min_requests", func(c *configs.SLO) { c.MinRequests = 7 }, func(c slo.Config) bool { return c.MinRequests == 7 }),
	sloRow("slo.fail_ratio", func(c *configs.SLO) { c.FailRatio = 0.2 }, func(c slo.Config) bool { return c.FailRatio == 0.2 }),
	{key: "slo.interval", edit: func(c *configs.Config, _ *keyEnv) { c.SLO.Interval = configs.D(2 * time.Second) }},

	{key: "rollout.tick", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Rollout.Tick = configs.D(250 * time.Millisecond) },
		check: func(t *testing.T, e *keyEnv) {
			if d := e.node().Controller().Tuning().Tick; d != 250*time.Millisecond {
				t.Errorf("the controller ticks every %v", d)
			}
		}},
	{key: "rollout.degraded_ticks", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Rollout.DegradedTicks = 9 },
		check: func(t *testing.T, e *keyEnv) {
			if n := e.node().Controller().Tuning().DegradedTicks; n != 9 {
				t.Errorf("the controller reverts after %d degraded ticks", n)
			}
		}},
	{key: "rollout.max_step_per_tick", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Rollout.MaxStepPerTick = 12.5 },
		check: func(t *testing.T, e *keyEnv) {
			if n := e.node().Controller().Tuning().MaxStepPerTick; n != 12.5 {
				t.Errorf("the controller steps at most %v%% per tick", n)
			}
		}},
	{key: "rollout.bake", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Rollout.Bake = configs.D(2 * time.Second) },
		check: func(t *testing.T, e *keyEnv) {
			if p := e.startPlan(t, `{"name":"p","targets":["stable-b"],"baseline":["stable-a"]}`); p["bake"] != "2s" {
				t.Errorf("a plan without bake got %v, want [rollout] bake 2s", p["bake"])
			}
		}},
	{key: "rollout.min_requests", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Rollout.MinRequests = 7 },
		check: func(t *testing.T, e *keyEnv) {
			if p := e.startPlan(t, `{"name":"p","targets":["stable-b"],"baseline":["stable-a"]}`); p["min_requests"] != 7.0 {
				t.Errorf("a plan without min_requests got %v, want [rollout] min_requests 7", p["min_requests"])
			}
		}},
	{key: "plan", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) {
			c.Plans = []map[string]any{{"name": "cfgplan", "targets": []any{"stable-b"}, "baseline": []any{"stable-a"}, "steps": []any{10, 100}}}
		},
		check: func(t *testing.T, e *keyEnv) {
			if p := e.startPlan(t, `{"name":"cfgplan"}`); fmt.Sprint(p["steps"]) != "[10 100]" {
				t.Errorf("the config's plan started with steps %v", p["steps"])
			}
		}},

	{key: "gossip.bind", edit: func(c *configs.Config, _ *keyEnv) { c.Gossip.Bind = "127.0.0.1:0" }},
	{key: "gossip.advertise", edit: func(c *configs.Config, _ *keyEnv) { c.Gossip.Advertise = "127.0.0.1:7946" }},
	{key: "gossip.join", base: withGossip, edit: func(c *configs.Config, _ *keyEnv) { c.Gossip.Join = []string{"127.0.0.1:1"} }},
	{key: "gossip.secret_key_file", edit: func(c *configs.Config, e *keyEnv) {
		c.Gossip.SecretKeyFile = e.writeFile("gossip.key", "0123456789abcdef0123456789abcdef\n")
	}},
}

// TestReloadEveryKey changes each key of the schema on a running node
// (in-process, real loopback upstreams) and reloads through `cellgate ctl
// reload`. A hot key's reload succeeds, bumps config_generation and its
// row's check sees the new value at work. A restart-only key's reload
// fails with "needs a restart" naming the key; the same file also turns
// routing.response_headers off, and the test proves that change was not
// applied either (all or nothing) and config_generation did not move.
func TestReloadEveryKey(t *testing.T) {
	rows := map[string]keyRow{}
	for _, r := range keyRows {
		if _, dup := rows[r.key]; dup {
			t.Fatalf("two rows for %s", r.key)
		}
		rows[r.key] = r
	}
	for _, key := range configs.Keys() {
		if _, ok := rows[key]; !ok {
			t.Errorf("config key %s has no row in keyRows: say whether a reload applies it or refuses it (see keyRow)", key)
		}
	}
	for _, key := range configs.Keys() {
		r, ok := rows[key]
		if !ok {
			continue
		}
		delete(rows, key)
		t.Run(key, func(t *testing.T) {
			t.Parallel() // each row has a node, upstreams and files of its own (newKeyEnv)
			r.run(t)
		})
	}
	for key := range rows {
		t.Errorf("row %s names no key of the schema", key)
	}
}

func (r keyRow) run(t *testing.T) {
	e := newKeyEnv(t, r.base)
	next := e.cfg
	next.Routing.StickyKey = append([]string(nil), e.cfg.Routing.StickyKey...)
	next.Cells = append([]configs.Cell(nil), e.cfg.Cells...)
	r.edit(&next, e)
	if !r.hot {
		next.Routing.ResponseHeaders = false // a hot change riding along: it must not be applied
	}
	if changed := configs.Diff(&e.cfg, &next); !contains(changed, r.key) {
		t.Fatalf("the row's edit does not change %s (changed: %v)", r.key, changed)
	}
	e.write(t, &next)
	gen := e.generation(t)
	code, out, errOut := ctlRun(e.fileNode(), "reload")
	if !r.hot {
		if code == 0 || !strings.Contains(errOut, r.key+" changed") || !strings.Contains(errOut, "needs a restart") {
			t.Fatalf("reload changing restart-only %s: exit %d, %s%s; want it refused naming the key", r.key, code, out, errOut)
		}
		if g := e.generation(t); g != gen {
			t.Errorf("a refused reload moved config_generation %d → %d", gen, g)
		}
		if resp := e.get(t, "k"); resp.Header.Get("X-Cellgate-Cell") == "" {
			t.Errorf("a refused reload applied routing.response_headers = false from the same file")
		}
		return
	}
	if code != 0 {
		t.Fatalf("reload changing hot %s: exit %d, %s%s", r.key, code, out, errOut)
	}
	if g := e.generation(t); g != gen+1 {
		t.Errorf("config_generation %d → %d, want +1", gen, g)
	}
	r.check(t, e)
}

// keyEnv is one row's node, its upstreams and its files.
type keyEnv struct {
	t              *testing.T
	dir            string
	a1, a2, b1     *democell.Server // stable-a's endpoint (a2 spare), stable-b's
	cfg            configs.Config   // as the node started
	file           string
	c              *cluster
	client         *http.Client
	scheme         string
	pool, newPool  *x509.CertPool
	renewedSubject string
}

func newKeyEnv(t *testing.T, base func(*configs.Config, *keyEnv)) *keyEnv {
	t.Helper()
	e := &keyEnv{t: t, dir: t.TempDir(), scheme: "http"}
	e.file = filepath.Join(e.dir, "cellgate.toml")
	for _, s := range []**democell.Server{&e.a1, &e.a2, &e.b1} {
		name := "stable-a"
		if s == &e.b1 {
			name = "stable-b"
		}
		srv, err := democell.Start(name, "v1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		*s = srv
	}
	text := fmt.Sprintf(`node_name = "keys-1"
[listen]
addr = "127.0.0.1:0"
drain_timeout = "5s"
[admin]
addr = "127.0.0.1:0"
[state]
path = %q
[routing]
sticky_key = ["header:X-User-ID"]
response_headers = true
[[cell]]
name = "stable-a"
version = "v1"
weight = 100
endpoints = [%q]
[[cell]]
name = "stable-b"
version = "v1"
weight = 100
endpoints = [%q]
`, filepath.Join(e.dir, "journal.db"), e.a1.Addr(), e.b1.Addr())
	cfg, err := configs.Parse([]byte(text), e.file)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = *cfg
	if base != nil {
		base(&e.cfg, e)
	}
	e.write(t, &e.cfg)
	loaded, err := configs.Load(e.file)
	if err != nil {
		t.Fatal(err)
	}
	if d := configs.Diff(&e.cfg, loaded); len(d) != 0 {
		t.Fatalf("the config does not survive a TOML round trip: %v differ", d)
	}
	e.cfg = *loaded
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: e.pool}}
	e.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	e.c = &cluster{t: t, cells: map[string]*democell.Server{}, path: e.cfg.State.Path}
	e.c.start(loaded)
	return e
}

func (e *keyEnv) node() *cellgate.Node { return e.c.node }

// write encodes cfg as TOML into the node's config file.
func (e *keyEnv) write(t *testing.T, cfg *configs.Config) {
	t.Helper()
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a file beside the config and returns its path.
func (e *keyEnv) writeFile(name, content string) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *keyEnv) fileNode() *fileNode { return &fileNode{cluster: e.c, file: e.file} }

// generation reads config_generation from /v1/status.
func (e *keyEnv) generation(t *testing.T) uint64 {
	t.Helper()
	return statusNode(t, e.c.node.AdminAddr()).ConfigGeneration
}

// get sends GET / with X-User-ID: key (none when key is empty).
func (e *keyEnv) get(t *testing.T, key string) *http.Response {
	t.Helper()
	if key == "" {
		return e.getWith(t, "/")
	}
	return e.getWith(t, "/", "X-User-ID", key)
}

// getWith sends GET path with header name/value pairs; the body is read.
func (e *keyEnv) getWith(t *testing.T, path string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", e.scheme+"://"+e.c.node.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// spread sends n keyed requests and returns the cells that answered.
func (e *keyEnv) spread(t *testing.T, n int) map[string]bool {
	t.Helper()
	cells := map[string]bool{}
	for k := range n {
		cells[e.get(t, fmt.Sprint("user-", k)).Header.Get("X-Cellgate-Cell")] = true
	}
	return cells
}

// startPlan posts a plan and returns the started rollout's plan.
func (e *keyEnv) startPlan(t *testing.T, body string) map[string]any {
	t.Helper()
	admin := "http://" + e.c.node.AdminAddr()
	resp, err := http.Post(admin+"/v1/rollouts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var started struct{ ID string }
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &started) != nil {
		t.Fatalf("POST /v1/rollouts %s: %d %s", body, resp.StatusCode, b)
	}
	resp, err = http.Get(admin + "/v1/rollouts/" + started.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Plan map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Plan
}

// sloRow is a hot [slo] key whose new value the SLO engine must hold.
func sloRow(key string, edit func(*configs.SLO), holds func(slo.Config) bool) keyRow {
	return keyRow{key: key, hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { edit(&c.SLO) },
		check: func(t *testing.T, e *keyEnv) {
			if cfg := e.c.node.SLO().Config(); !holds(cfg) {
				t.Errorf("the SLO engine's config after the reload: %+v", cfg)
			}
		}}
}

// optionIs checks that the proxy now runs with want in the option get
// reads: for options no single request shows.
func optionIs(get func(proxy.Options) any, want any, what string) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		if got := get(e.node().Proxy().Options()); got != want {
			t.Errorf("%s %v, want %v", what, got, want)
		}
	}
}

// serves checks that a request is answered 200 (after a new server or new
// upstream pools took over).
func serves(t *testing.T, e *keyEnv) {
	if r := e.get(t, "k"); r.StatusCode != 200 {
		t.Errorf("a request after the reload: %d", r.StatusCode)
	}
}

// all runs checks in order.
func all(checks ...func(*testing.T, *keyEnv)) func(*testing.T, *keyEnv) {
	return func(t *testing.T, e *keyEnv) {
		for _, c := range checks {
			c(t, e)
		}
	}
}

// onlyStableA sends every request to stable-a's single endpoint.
func onlyStableA(c *configs.Config, _ *keyEnv) { c.Cells[1].Weight = 0 }

// oneConnPerEndpoint: two requests at once on a 1-connection pool; the
// second finds it busy (503 upstream-busy) instead of opening another.
func oneConnPerEndpoint(t *testing.T, e *keyEnv) {
	e.a1.SetDelay(time.Second)
	before := e.a1.Requests()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.get(t, "first")
	}()
	testwait.For(t, 5*time.Second, "the first request at the upstream", func() bool { return e.a1.Requests() > before })
	r := e.get(t, "second")
	wg.Wait()
	if got := fmt.Sprint(r.StatusCode, " ", r.Header.Get("X-Cellgate-Error")); got != "503 upstream-busy" {
		t.Errorf("a second request while the only connection of a max_conns_per_endpoint = 1 pool is busy: %s, want 503 upstream-busy", got)
	}
}

// withTLS starts the node on TLS with a first certificate.
func withTLS(c *configs.Config, e *keyEnv) {
	cert, key, pool := testcert.Write(e.t, e.dir, "first")
	c.Listen.TLSCert, c.Listen.TLSKey = cert, key
	e.scheme, e.pool = "https", pool
}

// renewCert points tls_cert and tls_key at a second certificate.
func renewCert(c *configs.Config, e *keyEnv) {
	cert, key, pool := testcert.Write(e.t, e.dir, "renewed")
	c.Listen.TLSCert, c.Listen.TLSKey = cert, key
	e.newPool, e.renewedSubject = pool, "renewed"
}

// servesRenewedCert: a new connection is served the renewed certificate.
func servesRenewedCert(t *testing.T, e *keyEnv) {
	conn, err := tls.Dial("tcp", e.c.node.Addr(), &tls.Config{RootCAs: e.newPool})
	if err != nil {
		t.Fatalf("a new TLS connection after the reload does not verify with the renewed certificate: %v", err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != e.renewedSubject {
		t.Errorf("served certificate %q", cn)
	}
}

// withWebSockets puts both cells on WebSocket upstreams, stable-b at
// weight 0 so tunnels open on stable-a, with tunnel timeouts far beyond
// the test's waits: only a reload can make a tunnel close in time.
func withWebSockets(c *configs.Config, e *keyEnv) {
	for i := range c.Cells {
		ws := wsecho.Start(c.Cells[i].Name)
		e.t.Cleanup(ws.Close)
		c.Cells[i].Endpoints = []string{ws.Addr}
	}
	c.Cells[1].Weight = 0
	c.Listen.TunnelIdleTimeout, c.Routing.TunnelDrain = configs.D(time.Hour), configs.D(time.Hour)
}

// rawConn dials the node's client listener.
func (e *keyEnv) rawConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.node().Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads c until the node closes it; an error means it was not
// closed within 10 s (the settings under test are a fraction of that, the
// defaults many times more).
func readAll(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	return got, err
}

// dialWS opens a WebSocket through the node (websocket_e2e_test's dial).
func (e *keyEnv) dialWS(t *testing.T) *websocket.Conn {
	t.Helper()
	c, _ := (&wsCluster{cluster: e.c}).dial(t, "ws-user")
	return c
}

// withGossip starts the node as a one-node fleet.
func withGossip(c *configs.Config, _ *keyEnv) { c.Gossip.Bind = "127.0.0.1:0" }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
