package slo

import (
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSnapshotCountsAndPercentiles(t *testing.T) {
	clk := &clock{t: simEpoch}
	reg := NewRegistry(simConfig(), clk.now)
	c := reg.Cell("a")
	if reg.Cell("a") != c {
		t.Fatal("Cell is not get-or-create")
	}
	for i := 1; i <= 1000; i++ {
		status := 200
		switch {
		case i%100 == 0:
			status = 503
		case i%50 == 0:
			status = 404
		}
		c.Record(status, i%200 == 0, time.Duration(i)*time.Millisecond, time.Duration(i)*time.Microsecond)
	}
	s := reg.Snapshot([]string{"a", "unknown"}, 10*time.Second)
	if s.Requests != 1000 || s.AvailabilityBad != 10 {
		t.Fatalf("requests %d, bad %d; want 1000, 10 (4xx are not bad)", s.Requests, s.AvailabilityBad)
	}
	if s.LatencyBad != 700 { // 301..1000 ms are over 300 ms
		t.Fatalf("latency bad %d, want 700", s.LatencyBad)
	}
	for _, p := range []struct {
		got, want time.Duration
	}{{s.P50, 500 * time.Millisecond}, {s.P90, 900 * time.Millisecond}, {s.P99, 990 * time.Millisecond}} {
		if d := p.got - p.want; d < 0 || d > p.want/1000 {
			t.Errorf("percentile %v, want %v (+0.1 %%)", p.got, p.want)
		}
	}
	h, _ := reg.LatencyHistograms([]string{"a"}, 10*time.Second)
	if h.TotalCount() != 1000 || h.ValueAtQuantile(50) != s.P50.Microseconds() {
		t.Errorf("HdrHistogram: %d values, p50 %d µs; want 1000, %d", h.TotalCount(), h.ValueAtQuantile(50), s.P50.Microseconds())
	}
	tot := c.Totals()
	if tot.Status2xx != 980 || tot.Status4xx != 10 || tot.Status5xx != 10 || tot.ProxyError != 5 {
		t.Fatalf("totals %+v", tot)
	}
	if reg.lookup("unknown") != nil {
		t.Fatal("Snapshot created a cell")
	}
}

func TestWindowsExpire(t *testing.T) {
	clk := &clock{t: simEpoch}
	reg := NewRegistry(simConfig(), clk.now)
	c := reg.Cell("a")
	for range 100 {
		c.Record(500, false, time.Millisecond, time.Millisecond)
	}
	clk.advance(10 * time.Second)
	if s := reg.Snapshot([]string{"a"}, 5*time.Second); s.Requests != 0 {
		t.Fatalf("5 s window 10 s later holds %d requests", s.Requests)
	}
	if s := reg.Snapshot([]string{"a"}, time.Minute); s.Requests != 100 || s.LatencySamples != 100 {
		t.Fatalf("1 min window holds %d requests, %d latencies; want 100", s.Requests, s.LatencySamples)
	}
	// Past the histogram span the percentiles are gone but the counts stay.
	clk.advance(2 * time.Minute)
	c.Record(200, false, time.Millisecond, time.Millisecond) // recycles slots
	s := reg.Snapshot([]string{"a"}, 5*time.Minute)
	if s.Requests != 101 || s.LatencySamples != 1 {
		t.Fatalf("after 2 min: %d requests, %d latencies; want 101, 1", s.Requests, s.LatencySamples)
	}
	// Recycled histogram slices live on in the lifetime histogram.
	if total, _ := c.hists.lifetime(nil); total.n != 101 {
		t.Fatalf("lifetime histogram holds %d, want 101", total.n)
	}
}

// TestConcurrentRecordAndRead runs recorders against readers; with -race
// it checks the ownership rules, and the totals must add up exactly.
func TestConcurrentRecordAndRead(t *testing.T) {
	clk := &clock{t: simEpoch}
	reg := NewRegistry(simConfig(), clk.now)
	const workers, per = 4, 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := reg.Cell("a")
			for i := range per {
				c.Record(200+w, false, time.Duration(i)*time.Microsecond, time.Microsecond)
				if i%1000 == 0 {
					clk.advance(time.Second)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		col := reg.Collector()
		for {
			select {
			case <-stop:
				return
			default:
			}
			reg.Snapshot([]string{"a"}, time.Minute)
			reg.Judge([]string{"a"}, nil, time.Time{}, nil)
			drain(col)
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	if got := reg.Snapshot([]string{"a"}, 10*time.Minute).Requests; got != workers*per {
		t.Fatalf("recorded %d, want %d", got, workers*per)
	}
	if tot := reg.Cell("a").Totals(); tot.Status2xx != workers*per {
		t.Fatalf("totals %+v", tot)
	}
}

func TestSetConfig(t *testing.T) {
	clk := &clock{t: simEpoch}
	reg := NewRegistry(simConfig(), clk.now)
	c := reg.Cell("a")
	cfg := simConfig()
	cfg.LatencyThreshold = time.Millisecond
	if err := reg.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	c.Record(200, false, 2*time.Millisecond, time.Millisecond)
	if s := reg.Snapshot([]string{"a"}, time.Second); s.LatencyBad != 1 {
		t.Fatalf("new threshold not applied: %+v", s)
	}
	if reg.Cell("a") != c {
		t.Fatal("cell pointer changed across a reload")
	}
	cfg.SlowBurn.Long = 24 * time.Hour
	if err := reg.SetConfig(cfg); err == nil {
		t.Fatal("a longer window than the ring holds was accepted")
	}
	cfg = simConfig()
	cfg.Availability = 2
	if err := reg.SetConfig(cfg); err == nil {
		t.Fatal("invalid config accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"zero is default", func(c *Config) { *c = Config{} }, true},
		{"availability 1", func(c *Config) { c.Availability = 1 }, false},
		{"short longer than long", func(c *Config) { c.FastBurn.Short = 2 * time.Hour }, false},
		{"window not a multiple of interval", func(c *Config) { c.FastBurn.Short = 1500 * time.Millisecond }, false},
		{"negative min requests", func(c *Config) { c.MinRequests = -1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestRecordEnded: on the real clock a request is recorded at the end time
// its caller passes (a request that ended ten minutes ago is outside the
// last 5 s and inside the last 15 min); with an injected clock the passed
// time (another clock's) is ignored for the registry's own.
func TestRecordEnded(t *testing.T) {
	reg := NewRegistry(DefaultConfig(), nil)
	c := reg.Cell("a")
	now := time.Now()
	c.RecordEnded(now, 200, false, time.Millisecond, 0)
	c.RecordEnded(now.Add(-10*time.Minute), 200, false, time.Millisecond, 0)
	if n := reg.Snapshot([]string{"a"}, 5*time.Second).Requests; n != 1 {
		t.Errorf("real clock: %d requests in the last 5 s, want 1 (the one that just ended)", n)
	}
	if n := reg.Snapshot([]string{"a"}, 15*time.Minute).Requests; n != 2 {
		t.Errorf("real clock: %d requests in the last 15 min, want 2", n)
	}

	clk := &clock{t: simEpoch}
	fake := NewRegistry(simConfig(), clk.now)
	fake.Cell("b").RecordEnded(time.Now(), 200, false, time.Millisecond, 0)
	if n := fake.Snapshot([]string{"b"}, 5*time.Second).Requests; n != 1 {
		t.Errorf("injected clock: %d requests in its last 5 s, want 1", n)
	}
}
