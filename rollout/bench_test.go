package rollout

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkTickHold measures a tick that judges an active rollout and
// decides to hold (no commit): the steady state between steps.
func BenchmarkTickHold(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run("rollouts="+strconv.Itoa(n), func(b *testing.B) {
			cells := Weights{}
			c, err := Open(b.TempDir()+"/bench.db", Options{Cells: cells, NoSync: true, NewID: nil}, Hooks{
				Judge: func(*Plan, time.Time, time.Time) Verdict { return Verdict{State: StateInconclusive} },
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.mu.Lock()
			for i := range n {
				cells[cellName("t", i)], cells[cellName("b", i)] = 0, 100
				c.weights[cellName("t", i)], c.weights[cellName("b", i)] = 0, 100
			}
			c.mu.Unlock()
			now := time.Now()
			for i := range n {
				p := Plan{Name: cellName("p", i), Targets: []string{cellName("t", i)}, Baseline: []string{cellName("b", i)}, Steps: []float64{100}, MaxStepPerTick: 100}
				if _, err := c.Start(p, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Tick(now); err != nil { // enter the first step
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Tick(now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func cellName(prefix string, i int) string { return prefix + string(rune('a'+i)) }
