package slo

import (
	"math/rand/v2"
	"testing"
	"time"
)

// latencies is a realistic spread of request durations (log-normal around
// 40 ms) so recorders touch different buckets as real ones do.
func latencies(n int) []time.Duration {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = lognormal(rng, 40*time.Millisecond, 0.5)
	}
	return out
}

func BenchmarkRecord(b *testing.B) {
	benchRecord(b, func(c *Cell, d time.Duration) { c.Record(200, false, d, d/2) })
}

// benchRecord runs record on one cell from every benchmark goroutine with
// a realistic spread of latencies.
func benchRecord(b *testing.B, record func(c *Cell, d time.Duration)) {
	r := NewRegistry(DefaultConfig(), nil)
	c := r.Cell("a")
	lat := latencies(1024)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(lat))
		for pb.Next() {
			record(c, lat[i&1023])
			i++
		}
	})
}

// BenchmarkRecordWatched is RecordAt on a canary the controller watches,
// with 1 % of requests bad: the alarm costs one atomic load per request and
// a non-blocking channel send per bad one (a reader drains the channel, as
// the controller does).
func BenchmarkRecordWatched(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	r.Watch(map[string][]string{"canary": {"base"}})
	c := r.Cell("canary")
	lat := latencies(1024)
	now := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-r.Alarms():
			case <-done:
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(lat))
		for pb.Next() {
			d := lat[i&1023]
			status := 200
			if i%100 == 0 {
				status = 500
			}
			c.RecordAt(now, status, false, d, d/2)
			i++
		}
	})
}

func BenchmarkRecordAt(b *testing.B) {
	now := time.Now()
	benchRecord(b, func(c *Cell, d time.Duration) { c.RecordAt(now, 200, false, d, d/2) })
}

// BenchmarkRecordEnded is RecordAt as the request path calls it for a
// flag cohort: with the time.Now reading the request ended at, on the
// registry's real clock.
func BenchmarkRecordEnded(b *testing.B) {
	end := time.Now()
	benchRecord(b, func(c *Cell, d time.Duration) { c.RecordEnded(end, 200, false, d, d/2) })
}

// warmWorld returns a simulated world after warm seconds of traffic:
// baseline 2 × 150 rps, canary 275 rps.
func warmWorld(warm time.Duration) *simWorld {
	w := newSimWorld(1, simConfig())
	w.add(&simCell{name: "base-a", rps: 150, errRatio: 0.001, latScale: 1})
	w.add(&simCell{name: "base-b", rps: 150, errRatio: 0.001, latScale: 1})
	w.add(&simCell{name: "canary", rps: 275, errRatio: 0.001, latScale: 1})
	for range int(warm / time.Second) {
		w.second()
	}
	return w
}

func BenchmarkJudge(b *testing.B) {
	w := warmWorld(5 * time.Minute)
	since := w.now.Add(-4 * time.Minute)
	targets, base := []string{"canary"}, []string{"base-a", "base-b"}
	b.ReportAllocs()
	for b.Loop() {
		w.reg.Judge(targets, base, since, nil)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	w := warmWorld(5 * time.Minute)
	cells := []string{"base-a", "base-b"}
	for _, win := range []time.Duration{5 * time.Second, time.Minute, 5 * time.Minute} {
		b.Run(win.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.reg.Snapshot(cells, win)
			}
		})
	}
}

func BenchmarkCollect(b *testing.B) {
	w := warmWorld(2 * time.Minute)
	col := w.reg.Collector()
	b.ReportAllocs()
	for b.Loop() {
		drain(col)
	}
}
