package slo

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var reportPath = flag.String("slo.report", "", "write the detection-power table (markdown) to this file")

// TestSimPowerReport measures detection time and power over canary error
// ratio and latency shift, and writes the table pasted into README.md:
//
//	go test ./slo -run SimPowerReport -slo.report /tmp/power.md
func TestSimPowerReport(t *testing.T) {
	if *reportPath == "" {
		t.Skip("set -slo.report FILE to generate the README table")
	}
	const n = 100
	type scenario struct {
		name      string
		errFactor float64
		latScale  float64
	}
	scenarios := []scenario{
		{"errors 1× baseline (0.1 %)", 1, 1},
		{"errors 2× (0.2 %)", 2, 1},
		{"errors 5× (0.5 %)", 5, 1},
		{"errors 10× (1 %)", 10, 1},
		{"errors 100× (10 %)", 100, 1},
		{"latency +10 % (p99 128→141 ms)", 1, 1.1},
		{"latency +50 % (p99 128→192 ms)", 1, 1.5},
		{"latency +200 % (p99 128→384 ms)", 1, 3},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | canary rps | detected in 10 min | median / p90 time to detect | first rule | failing in 10 min | median time to failing |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|\n")
	for _, rps := range []float64{100, 500} {
		for si, sc := range scenarios {
			res := simMany(n, func(i int) simResult {
				return simRun(uint64(100000*si+i), rps, sc.errFactor, sc.latScale, 60*time.Second, 10*time.Minute, Failing)
			})
			var times, fails []time.Duration
			rules := map[string]int{}
			for _, r := range res {
				if r.after >= 0 {
					times = append(times, r.after)
					rules[r.v.Rule]++
				}
				if r.fail >= 0 {
					fails = append(fails, r.fail)
				}
			}
			slices.Sort(times)
			slices.Sort(fails)
			med, p90, fmed := "–", "–", "–"
			if len(times) > 0 {
				med = times[len(times)/2].String()
				p90 = times[min(len(times)-1, len(times)*9/10)].String()
			}
			if len(fails) > 0 {
				fmed = fails[len(fails)/2].String()
			}
			var rs []string
			for r, k := range rules {
				rs = append(rs, fmt.Sprintf("%s %d", r, k))
			}
			slices.Sort(rs)
			fmt.Fprintf(&b, "| %s | %.0f | %d %% | %s / %s | %s | %d %% | %s |\n", sc.name, rps,
				100*len(times)/n, med, p90, strings.Join(rs, ", "), 100*len(fails)/n, fmed)
		}
	}
	if err := os.WriteFile(*reportPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
