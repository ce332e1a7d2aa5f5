package cellgate_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// TestReleasePatterns runs each example config's plan (per-cell canary,
// coordinated rolling, blue/green) end to end: the example's cells become
// in-process demo cells, its windows and bake shrink to seconds, and the plan
// must be promoted under load with no failed request.
func TestReleasePatterns(t *testing.T) {
	waitBound(t)
	for _, name := range []string{"canary.toml", "rolling.toml", "bluegreen.toml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := configs.Parse(configs.Examples()[name], name)
			if err != nil {
				t.Fatal(err)
			}
			c := &cluster{t: t, cells: map[string]*democell.Server{}, path: filepath.Join(t.TempDir(), "j.db")}
			cfg.Listen.Addr, cfg.Admin.Addr, cfg.Admin.TokenFile, cfg.State.Path = "127.0.0.1:0", "127.0.0.1:0", "", c.path
			cfg.Routing.TrustedProxies = nil
			cfg.Routing.StickyKey = []string{"header:X-User-ID"}
			cfg.Rollout.Tick = configs.D(200 * time.Millisecond)
			cfg.Rollout.MaxStepPerTick = 100
			cfg.SLO.MinRequests = 20
			cfg.SLO.LatencyThreshold = configs.D(10 * time.Second) // see healthyHead
			cfg.SLO.FastBurn = configs.BurnRule{Long: configs.D(30 * time.Second), Short: configs.D(2 * time.Second), Rate: 14.4}
			cfg.SLO.SlowBurn = configs.BurnRule{Long: configs.D(60 * time.Second), Short: configs.D(5 * time.Second), Rate: 6}
			for i := range cfg.Cells {
				s, err := democell.Start(cfg.Cells[i].Name, cfg.Cells[i].Version)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				c.cells[cfg.Cells[i].Name] = s
				cfg.Cells[i].Endpoints = []string{s.Addr()}
			}
			plan := cfg.Plans[0]
			plan["bake"], plan["min_requests"] = "400ms", int64(20)
			delete(plan, "approve_at")
			c.start(cfg)
			p, err := c.node.Plan(plan["name"].(string))
			if err != nil {
				t.Fatal(err)
			}
			l := startLoad(t, c.url(), 600, 2000)
			testwait.For(t, 10*time.Second, "baseline traffic", func() bool { return l.requests.Load() > 200 })
			id, err := c.node.Controller().Start(p, "test")
			if err != nil {
				t.Fatal(err)
			}
			v := waitTerminal(t, c, id, 60*time.Second)
			l.stop()
			if v.Status != rollout.StatusPromoted {
				t.Fatalf("%s: status %s, want promoted; decisions:\n%s", p.Strategy, v.Status, decisions(v))
			}
			w := c.node.Proxy().Weights()
			for _, b := range p.Baseline {
				if w[b] != 0 {
					t.Errorf("baseline %s still has weight %v", b, w[b])
				}
			}
			for _, tg := range p.Targets {
				if w[tg] == 0 {
					t.Errorf("target %s has no weight", tg)
				}
			}
			if n := l.failed.Load(); n != 0 {
				t.Errorf("%d of %d requests failed", n, l.requests.Load())
			}
			t.Logf("%s: %s promoted in %d steps, %d requests, 0 failed, weights %v",
				name, p.Strategy, v.Steps, l.requests.Load(), fmt.Sprint(w))
		})
	}
}
