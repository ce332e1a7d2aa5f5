package configs

import (
	"testing"
	"time"
)

// TestFailoverKeysValidate: every bad health, failover and discovery value
// is reported at its line, all at once.
func TestFailoverKeysValidate(t *testing.T) {
	src := `[upstream]                          # 1
max_ejection_percent = 101          # 2
[routing]                           # 3
failover_panic = -1                 # 4
[discovery]                         # 5
interval = "0s"                     # 6
resolver = "nope"                   # 7
[[cell]]                            # 8
name = "a"                          # 9
weight = 1                          # 10
endpoints = ["dns:a.svc:0", "srv:a.svc", "dns:ok.svc:80"]  # 11
health = { path = "healthz", interval = "1s", timeout = "2s", unhealthy = -1, expect = 42 }  # 12
`
	_, err := Parse([]byte(src), "f.toml")
	want := []string{
		"f.toml:2: upstream.max_ejection_percent: must be 0-100",
		"f.toml:4: routing.failover_panic: must be 0-100",
		"f.toml:6: discovery.interval: must be positive",
		"f.toml:7: discovery.resolver: bad address",
		`cell.0.endpoints: endpoint "dns:a.svc:0": port must be 1-65535`,
		`cell.0.endpoints: endpoint "srv:a.svc": want srv:_service._proto.NAME`,
		"cell.0.health.timeout: must not exceed the interval",
		"cell.0.health.unhealthy: must be at least 1",
		"cell.0.health.expect: 42 is not an HTTP status",
		"cell.0.health.path: must start with /",
	}
	wantProblems(t, err, want, true)
}

// TestHealthDefaults: omitted health fields take their defaults, and a
// cell with `health = {}` checks by TCP connect.
func TestHealthDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`[[cell]]
name = "a"
weight = 1
endpoints = ["127.0.0.1:1"]
health = {}
`), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Cells[0].Health.WithDefaults()
	if h.Path != "" || h.Interval.Duration != 5*time.Second || h.Timeout.Duration != time.Second || h.Unhealthy != 3 || h.Healthy != 2 || h.Expect != 0 {
		t.Fatalf("defaults: %+v", h)
	}
	if cfg.Routing.FailoverPanic != 50 || cfg.Upstream.MaxEjectionPercent != 50 || cfg.Discovery.Interval.Duration != 5*time.Second {
		t.Fatalf("failover_panic %v, max_ejection_percent %v, discovery.interval %v", cfg.Routing.FailoverPanic, cfg.Upstream.MaxEjectionPercent, cfg.Discovery.Interval)
	}
}
