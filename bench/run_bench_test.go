package bench

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkClosedLoop measures the generator per request against a loopback
// fasthttp server in the same process (so the time and allocations include
// the server's share). BENCH_URL points it at an outside server instead,
// which is how the generator was profiled against the bench upstream:
//
//	BENCH_URL=http://127.0.0.1:19100/ go test -run - -bench ClosedLoop -benchmem ./bench/
func BenchmarkClosedLoop(b *testing.B) {
	for _, conns := range []int{1, 16, 64} {
		b.Run("c="+strconv.Itoa(conns), func(b *testing.B) {
			url := os.Getenv("BENCH_URL")
			if url == "" {
				url = startServer(b, okHandler)
			}
			cfg := DefaultConfig()
			cfg.URL = url
			cfg.Connections = conns
			cfg.Warmup, cfg.Duration = 0, 0 // until b.N responses
			cfg.Keys = 1000
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var seen atomic.Int64
			limit := int64(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			res, err := Run(ctx, cfg, Hooks{OnResponse: func(Observation) {
				if seen.Add(1) == limit {
					cancel()
				}
			}})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if res.Errors > 0 {
				b.Fatalf("errors: %v", res.ErrorsBy)
			}
			b.ReportMetric(res.RPS, "req/s")
		})
	}
}
