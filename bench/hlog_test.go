package bench

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// readHlog decodes every interval of an hlog with hdrhistogram-go's reader.
func readHlog(t *testing.T, data []byte) []*hdrhistogram.Histogram {
	t.Helper()
	r := hdrhistogram.NewHistogramLogReader(bytes.NewReader(data))
	var out []*hdrhistogram.Histogram
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("read hlog: %v", err)
		}
		if h == nil {
			return out
		}
		out = append(out, h)
	}
}

// TestHlogRoundTrip writes known intervals and reads them back with
// hdrhistogram-go's decoder: same counts, same values, and the timestamp
// columns carry start and length in seconds as the format defines.
func TestHlogRoundTrip(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_250)
	var buf bytes.Buffer
	w, err := NewHlogWriter(&buf, start)
	if err != nil {
		t.Fatal(err)
	}
	var in []*hdrhistogram.Histogram
	for i := range 3 {
		h := newHistogram()
		for v := range 100 * (i + 1) {
			recordClamped(h, int64(v+1)*int64(time.Millisecond)/10)
		}
		in = append(in, h)
		w.Observe(Interval{
			Start:     start.Add(time.Duration(i) * 1500 * time.Millisecond),
			Length:    1500 * time.Millisecond,
			Histogram: h,
		})
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	out := readHlog(t, buf.Bytes())
	if len(out) != len(in) {
		t.Fatalf("read %d intervals, wrote %d:\n%s", len(out), len(in), buf.String())
	}
	for i := range in {
		if out[i].TotalCount() != in[i].TotalCount() || out[i].ValueAtPercentile(99) != in[i].ValueAtPercentile(99) {
			t.Errorf("interval %d: count %d p99 %d, want %d %d", i, out[i].TotalCount(), out[i].ValueAtPercentile(99),
				in[i].TotalCount(), in[i].ValueAtPercentile(99))
		}
		wantStart := start.UnixMilli() + int64(i)*1500
		if got := out[i].StartTimeMs(); got != wantStart {
			t.Errorf("interval %d: absolute start %d ms, want %d", i, got, wantStart)
		}
	}
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, `"`) || l == "" {
			continue
		}
		lines = append(lines, l)
	}
	cols := strings.Split(lines[1], ",")
	if cols[0] != "1.500" || cols[1] != "1.500" {
		t.Errorf("second interval columns %q %q, want start 1.500 and length 1.500", cols[0], cols[1])
	}
	if maxMs, _ := strconv.ParseFloat(cols[2], 64); maxMs < 19.9 || maxMs > 20.1 {
		t.Errorf("max column %q, want ≈ 20 (ms)", cols[2])
	}
}

// TestHlogFromRun logs a real run and checks that the intervals add up to
// the result.
func TestHlogFromRun(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(url)
	cfg.Rate = 400
	cfg.Duration = 600 * time.Millisecond
	var buf bytes.Buffer
	var hw *HlogWriter
	res, err := Run(context.Background(), cfg, Hooks{OnInterval: func(iv Interval) {
		if hw == nil {
			var err error
			if hw, err = NewHlogWriter(&buf, iv.Start); err != nil {
				t.Error(err)
			}
		}
		hw.SetTag("A")
		hw.Observe(iv)
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := readHlog(t, buf.Bytes())
	if len(out) < 4 {
		t.Fatalf("%d intervals, want about 6", len(out))
	}
	var total int64
	for _, h := range out {
		total += h.TotalCount()
		if h.Tag() != "A" {
			t.Errorf("tag %q, want A", h.Tag())
		}
	}
	if total != res.Latency.Count {
		t.Errorf("intervals hold %d values, result %d", total, res.Latency.Count)
	}
}
