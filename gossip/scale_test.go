package gossip

import (
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scaleSizes turns on TestConvergenceAtScale, e.g. -gossip.scale=25,50. It
// is off by default: 50 in-process nodes take a while to form on 2 cores.
var scaleSizes = flag.String("gossip.scale", "", "comma-separated cluster sizes for TestConvergenceAtScale (e.g. 25,50)")

// TestConvergenceAtScale measures how long a published document takes to
// reach every node of a larger in-process cluster (real memberlist over
// loopback, LAN default timings), reporting p50/p99 over 20 publishes.
//
//	go test ./gossip -run TestConvergenceAtScale -v -gossip.scale=25,50
func TestConvergenceAtScale(t *testing.T) {
	if *scaleSizes == "" {
		t.Skip("set -gossip.scale=25,50 to run")
	}
	for _, s := range strings.Split(*scaleSizes, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size < 2 {
			t.Fatalf("bad size %q", s)
		}
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			start := time.Now()
			nodes := startCluster(t, size, nodeOpts{noTiming: true, configure: func(c *Config) {
				c.JoinBackoff = 50 * time.Millisecond
			}})
			formed := time.Since(start)
			lat := convergence(t, nodes, 20, 10*time.Second)
			t.Logf("%d nodes (formed in %v): publish convergence p50=%v p99=%v max=%v",
				size, formed.Round(time.Millisecond), percentile(lat, 0.5).Round(time.Millisecond),
				percentile(lat, 0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		})
	}
}
