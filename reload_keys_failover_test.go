package cellgate_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/discovery/dnstest"
	"github.com/cellgate/cellgate/internal/testwait"
)

// The rows of TestReloadEveryKey for health, failover and discovery keys
// (see keyRow).
func init() { keyRows = append(keyRows, failoverKeyRows...) }

var failoverKeyRows = []keyRow{
	{key: "upstream.max_ejection_percent", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Upstream.MaxEjectionPercent = 77 },
		check: func(t *testing.T, e *keyEnv) {
			if p := e.node().Proxy().Options().MaxEjectionPercent; p != 77 {
				t.Errorf("5xx may eject %d %% of a cell", p)
			}
		}},
	{key: "routing.failover_panic", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) { c.Routing.FailoverPanic = 0 },
		check: func(t *testing.T, e *keyEnv) {
			e.b1.Kill()
			e.spread(t, 32) // the refused connects take stable-b down
			failed, onA := 0, 0
			for k := range 32 {
				r := e.get(t, fmt.Sprint("user-", k))
				if r.StatusCode != 200 {
					failed++
				} else if r.Header.Get("X-Cellgate-Cell") == "stable-a" {
					onA++
				}
			}
			if failed == 0 || onA == 32 {
				t.Errorf("failover_panic = 0 (never fail over), stable-b dead: %d of 32 failed, %d on stable-a", failed, onA)
			}
		}},
	{key: "cell.health", hot: true,
		edit: func(c *configs.Config, _ *keyEnv) {
			c.Cells[1].Health = &configs.Health{Path: "/", Interval: configs.D(20 * time.Millisecond),
				Timeout: configs.D(10 * time.Millisecond), Unhealthy: 1, Healthy: 1}
		},
		check: func(t *testing.T, e *keyEnv) {
			e.b1.Kill() // no traffic reaches it: only the active check can tell
			testwait.For(t, 10*time.Second, "stable-b down by its health check", func() bool { return !cellUp(e, "stable-b") })
			if cells := e.spread(t, 32); len(cells) != 1 || !cells["stable-a"] {
				t.Errorf("stable-b down, 32 users served by %v, want stable-a only", cells)
			}
		}},
	{key: "discovery.resolver", hot: true,
		edit: func(c *configs.Config, e *keyEnv) {
			d := dnstest.Start(e.t)
			d.Set(e.t, "b.test", "b.test. 5 IN A 127.0.0.1")
			c.Discovery.Resolver = d.Addr
			c.Cells[1].Endpoints = []string{"dns:b.test:" + portOf(e.t, e.b1.Addr())}
		},
		check: func(t *testing.T, e *keyEnv) {
			before := e.b1.Requests()
			if cells := e.spread(t, 32); !cells["stable-b"] || e.b1.Requests() == before {
				t.Errorf("stable-b by the resolver's name: served %v, its server got %d requests", cells, e.b1.Requests()-before)
			}
		}},
	discoveryRow("discovery.interval", func(c *configs.Discovery) { c.Interval = configs.D(20 * time.Millisecond) },
		func(t *testing.T, e *keyEnv, d *dnstest.Server) {
			d.Set(t, "_http._tcp.b.test", "_http._tcp.b.test. 3600 IN SRV 0 0 "+portOf(t, e.a2.Addr())+" b.test.")
			testwait.For(t, 10*time.Second, "stable-b's new SRV target within the 20ms interval (it was 1h)", func() bool {
				e.spread(t, 8)
				return e.a2.Requests() > 0
			})
		}),
	discoveryRow("discovery.grace", func(c *configs.Discovery) {
		c.Interval, c.Grace = configs.D(20*time.Millisecond), configs.D(50*time.Millisecond)
	}, func(t *testing.T, e *keyEnv, d *dnstest.Server) {
		d.Stop()
		testwait.For(t, 10*time.Second, "the set dropped after the 50ms grace", func() bool {
			for _, s := range discoveryStatus(t, e) {
				if s.Expired && s.Error != "" && len(s.Endpoints) == 0 {
					return true
				}
			}
			return false
		})
	}),
}

// discoveryRow is a row whose node starts with stable-b behind an SRV name
// on an in-test DNS server (interval 1h): edit changes [discovery], check
// sees the change at work.
func discoveryRow(key string, edit func(*configs.Discovery), check func(*testing.T, *keyEnv, *dnstest.Server)) keyRow {
	var d *dnstest.Server
	return keyRow{key: key, hot: true,
		base: func(c *configs.Config, e *keyEnv) {
			d = dnstest.Start(e.t)
			d.Set(e.t, "_http._tcp.b.test", "_http._tcp.b.test. 3600 IN SRV 0 0 "+portOf(e.t, e.b1.Addr())+" b.test.")
			d.Set(e.t, "b.test", "b.test. 3600 IN A 127.0.0.1")
			c.Discovery.Resolver, c.Discovery.Interval = d.Addr, configs.D(time.Hour)
			c.Cells[1].Endpoints = []string{"srv:_http._tcp.b.test"}
		},
		edit:  func(c *configs.Config, _ *keyEnv) { edit(&c.Discovery) },
		check: func(t *testing.T, e *keyEnv) { check(t, e, d) },
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cellUp(e *keyEnv, name string) bool {
	for _, c := range e.node().Proxy().Status() {
		if c.Name == name {
			return c.Up
		}
	}
	return false
}

// discoveryStatus reads the discovery targets from /v1/status.
func discoveryStatus(t *testing.T, e *keyEnv) []struct {
	Target    string   `json:"target"`
	Endpoints []string `json:"endpoints"`
	Error     string   `json:"error"`
	Expired   bool     `json:"expired"`
} {
	t.Helper()
	resp, err := http.Get("http://" + e.node().AdminAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Discovery []struct {
			Target    string   `json:"target"`
			Endpoints []string `json:"endpoints"`
			Error     string   `json:"error"`
			Expired   bool     `json:"expired"`
		} `json:"discovery"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Discovery
}
