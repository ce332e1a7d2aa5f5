package configs

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[cell]]
name = "a"
weight = 1
endpoints = ["127.0.0.1:9001"]
`

func TestParseMinimalGetsDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "m.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Addr != "127.0.0.1:8080" || c.Rollout.Tick.Duration != time.Second || !c.Routing.ResponseHeaders {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if len(c.Cells) != 1 || c.Cells[0].Endpoints[0] != "127.0.0.1:9001" {
		t.Fatalf("cells: %+v", c.Cells)
	}
}

func TestParseSecondsScaleWindows(t *testing.T) {
	c, err := Parse([]byte(minimal+`
[slo]
fast_burn = { long = "60s", short = "5s", rate = 14.4 }
slow_burn = { long = "120s", short = "10s", rate = 6 }
`), "s.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SLO.FastBurn.Short.Duration != 5*time.Second || c.SLO.SlowBurn.Long.Duration != 2*time.Minute {
		t.Fatalf("windows: %+v", c.SLO)
	}
}

// TestProblemsAllReportedWithLines checks that one bad file yields every
// problem at once, each at its line.
func TestProblemsAllReportedWithLines(t *testing.T) {
	src := `node_name = "n"          # 1
bogus = 1                    # 2
[listen]                     # 3
addr = "nope"                # 4
read_timeout = "10 parsecs"  # 5
[routing]                    # 6
sticky_key = ["header:X-User", "body:x"]  # 7
[[cell]]                     # 8
name = "a"                   # 9
weight = -1                  # 10
endpoints = []               # 11
[[cell]]                     # 12
name = "a"                   # 13
weight = 0                   # 14
endpoints = ["localhost"]    # 15
colour = "red"               # 16
[rollout]                    # 17
tick = "0s"                  # 18
`
	_, err := Parse([]byte(src), "bad.toml")
	want := []string{
		"bad.toml:2: bogus: unknown key",
		"bad.toml:4: listen.addr: bad address",
		"bad.toml:5: listen.read_timeout: bad duration",
		"bad.toml:7: routing.sticky_key[1]: sticky key source",
		"bad.toml:10: cell.0.weight: weight must be a non-negative number",
		"bad.toml:11: cell.0.endpoints: cell \"a\" has no endpoints",
		"bad.toml:13: cell.1.name: duplicate cell name \"a\"",
		"bad.toml:15: cell.1.endpoints: bad address \"localhost\"",
		"bad.toml:16: cell.colour: unknown key",
		"bad.toml:18: rollout.tick: must be positive",
		"all cell weights are zero",
	}
	wantProblems(t, err, want, true)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "[[cell]\nname=", "c.toml:2: expected end of table array"},
		{"type", "[listen]\nmax_conns = \"many\"", "c.toml:2: listen.max_conns: incompatible types"},
		{"no cells", "", "at least one [[cell]]"},
		{"bad burn", minimal + "[slo]\nfast_burn = { long = \"5s\", short = \"1m\", rate = 14.4 }", "must be shorter than long"},
		{"availability", minimal + "[slo]\navailability = 1.5", "slo.availability"},
		{"tls half", minimal + "[listen]\ntls_cert = \"c.pem\"", "tls_cert and tls_key go together"},
		{"core", minimal + "[listen]\ncore = \"threads\"", `c.toml:7: listen.core: must be "auto", "goroutine" or "loop", not "threads"`},
		{"core loop with tls", minimal + "[listen]\ncore = \"loop\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"", `listen.core: "loop" serves plain TCP only`},
		{"trusted proxy", minimal + "[routing]\ntrusted_proxies = [\"10.0.0.0/33\"]", "bad CIDR"},
		{"join without bind", minimal + "[gossip]\njoin = [\"127.0.0.1:7946\"]", "join needs gossip.bind"},
		{"cell name", "[[cell]]\nname = \"a b\"\nweight = 1\nendpoints = [\"127.0.0.1:1\"]", "must be 1 to 63 letters"},
		{"endpoint port", "[[cell]]\nname = \"a\"\nweight = 1\nendpoints = [\"127.0.0.1:99999\"]", "port must be"},
		{"plan name", minimal + "[[plan]]\nsteps = [1]", "needs a name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedConfigsValid(t *testing.T) {
	def, err := LoadDefault()
	if err != nil {
		t.Fatalf("embedded default: %v", err)
	}
	// The default core is "auto", which a TLS listener takes too (it
	// resolves to the goroutine core there; "loop" is refused with TLS).
	if def.Listen.Core != CoreAuto {
		t.Errorf("default listen.core %q, want %q", def.Listen.Core, CoreAuto)
	}
	if _, err := Parse([]byte(minimal+"[listen]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\""), "c.toml"); err != nil {
		t.Errorf("the default core with tls_cert: %v", err)
	}
	ex := Examples()
	for _, name := range []string{"canary.toml", "rolling.toml", "bluegreen.toml"} {
		src, ok := ex[name]
		if !ok {
			t.Fatalf("example %s missing", name)
		}
		c, err := Parse(src, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Plans) == 0 {
			t.Errorf("%s names no plan", name)
		}
	}
	if n := len(ex["rolling.toml"]); n == 0 {
		t.Fatal("rolling example empty")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(DefaultTOML())
	for _, b := range Examples() {
		f.Add(b)
	}
	f.Add([]byte("[[cell]]\nname=1"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "fuzz.toml")
		if err == nil {
			// A config that parses is internally consistent.
			if len(c.Cells) == 0 || c.Rollout.Tick.Duration <= 0 {
				t.Fatalf("accepted an invalid config: %+v", c)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error without problems: %v", err)
		}
	})
}

// TestCellNames: a cell name must be addressable as one URL path segment
// (PUT /v1/cells/{name}/weight): "." and ".." are not (a path resolves
// them away), nor is anything not starting with a letter or digit, nor a
// name over 63 bytes. Refusals carry file:line.
func TestCellNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"stable-a", true}, {"canary_1.v2", true}, {"A9", true}, {"a..b", true},
		{strings.Repeat("x", 63), true},
		{"..", false}, {".", false}, {".hidden", false}, {"-x", false}, {"_x", false},
		{"a/b", false}, {"a b", false}, {"a%2e", false}, {"é", false}, {strings.Repeat("x", 64), false},
	} {
		src := "node_name = \"n\"\n[[cell]]\nname = " + strconv.Quote(tc.name) + "\nweight = 1\nendpoints = [\"127.0.0.1:1\"]\n"
		_, err := Parse([]byte(src), "c.toml")
		switch {
		case tc.ok && err != nil:
			t.Errorf("cell name %q refused: %v", tc.name, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "c.toml:3: cell.0.name")):
			t.Errorf("cell name %q: %v, want a refusal at c.toml:3", tc.name, err)
		}
	}
}

// wantProblems checks that err is an *Error naming every problem in want
// (each a substring of the message) and, when exact, no other.
func wantProblems(t *testing.T, err error, want []string, exact bool) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	msg := ce.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if exact && len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ce.Problems), len(want), msg)
	}
}
