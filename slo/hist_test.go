package slo

import (
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestHistLayoutMatchesHdrHistogram checks our index arithmetic, quantiles
// and Import against the library, value by value.
func TestHistLayoutMatchesHdrHistogram(t *testing.T) {
	ref := hdrhistogram.New(histLowest, histHighest, histSigFigs)
	if got := len(ref.Export().Counts); got != histLen {
		t.Fatalf("hdrhistogram counts length %d, our layout %d", got, histLen)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var h atomicHist
	values := []int64{0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 999_999, 1_000_000, histHighest}
	for range 20000 {
		values = append(values, int64(rng.ExpFloat64()*float64(rng.IntN(1_000_000)+1)))
	}
	for _, v := range values {
		if v > histHighest {
			v = histHighest
		}
		if err := ref.RecordValue(v); err != nil {
			t.Fatal(err)
		}
		h.add(histIndex(v))
		i := histIndex(v)
		if lo, w := histLowestValue(i), histWidth(i); v < lo || v >= lo+w {
			t.Fatalf("value %d at index %d outside [%d, %d)", v, i, lo, lo+w)
		}
	}
	var d dist
	h.addTo(&d)
	want := ref.Export().Counts
	d.each(func(i int, n int64) {
		if want[i] != n {
			t.Fatalf("index %d: ours %d, hdrhistogram %d", i, n, want[i])
		}
	})
	if d.n != ref.TotalCount() {
		t.Fatalf("total %d, want %d", d.n, ref.TotalCount())
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		if got, want := d.quantile(q), ref.ValueAtQuantile(q*100); got != want {
			t.Errorf("quantile %v: %d, hdrhistogram %d", q, got, want)
		}
	}
	if !d.Histogram().Equals(ref) {
		t.Error("Import of our counts differs from the reference histogram")
	}
}

func TestHistIndexClamps(t *testing.T) {
	tests := []struct {
		name string
		us   int64
		want int
	}{
		{"negative", -5, 0},
		{"zero", 0, 0},
		{"max", histHighest, histIndex(histHighest)},
		{"beyond max", 10 * histHighest, histIndex(histHighest)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := histIndex(tc.us); got != tc.want || got > histMaxIndex {
				t.Fatalf("histIndex(%d) = %d, want %d", tc.us, got, tc.want)
			}
		})
	}
}
