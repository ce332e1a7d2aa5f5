package slo

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// drain collects every metric of col once.
func drain(col prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		col.Collect(ch)
		close(ch)
	}()
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestCollector(t *testing.T) {
	clk := &clock{t: simEpoch}
	reg := NewRegistry(simConfig(), clk.now)
	c := reg.Cell("canary-1")
	for i := range 100 {
		status := 200
		if i < 3 {
			status = 503
		}
		c.Record(status, false, 20*time.Millisecond, 3*time.Millisecond)
	}
	byName := gather(t, reg.Collector())
	req := byName["cellgate_requests_total"]
	if req == nil || len(req.Metric) != 2 {
		t.Fatalf("requests_total: %v", req)
	}
	for _, m := range req.Metric {
		code := labelOf(m, "code")
		want := map[string]float64{"200": 97, "503": 3}[code]
		if m.GetCounter().GetValue() != want || labelOf(m, "cell") != "canary-1" {
			t.Errorf("requests_total{code=%s} = %v, want %v", code, m.GetCounter().GetValue(), want)
		}
	}
	dur := byName["cellgate_request_duration_seconds"].Metric[0].GetHistogram()
	if dur.GetSampleCount() != 100 || dur.GetSampleSum() < 1.99 || dur.GetSampleSum() > 2.01 {
		t.Fatalf("duration count %d sum %v", dur.GetSampleCount(), dur.GetSampleSum())
	}
	for _, b := range dur.Bucket {
		want := uint64(0)
		if b.GetUpperBound() >= 0.025 {
			want = 100
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if ttfb := byName["cellgate_ttfb_seconds"].Metric[0].GetHistogram(); ttfb.GetSampleCount() != 100 {
		t.Fatalf("ttfb count %d", ttfb.GetSampleCount())
	}
	burn := byName["cellgate_slo_burn_rate"]
	if burn == nil || len(burn.Metric) != 8 { // 2 SLOs × 4 windows
		t.Fatalf("burn gauges: %v", burn)
	}
	for _, m := range burn.Metric {
		if labelOf(m, "slo") == SLOAvailability && labelOf(m, "window") == WindowFastShort && math.Abs(m.GetGauge().GetValue()-30) > 1e-9 {
			t.Errorf("availability fast_short burn %v, want 30 (3 %% / 0.1 %%)", m.GetGauge().GetValue())
		}
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// gather registers c with a pedantic registry (which checks descriptions
// and label consistency), gathers it and returns the families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	preg := prometheus.NewPedanticRegistry()
	if err := preg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := preg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}
