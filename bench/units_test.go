package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestKeyChooser(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Keys = 1000
	t.Run("uniform is reproducible", func(t *testing.T) {
		a, b := newKeyChooser(&cfg, 3), newKeyChooser(&cfg, 3)
		for range 100 {
			if ka, kb := string(a.next()), string(b.next()); ka != kb {
				t.Fatalf("%q != %q", ka, kb)
			}
		}
	})
	t.Run("zipf is skewed", func(t *testing.T) {
		z := cfg
		z.KeyDist = DistZipf
		k := newKeyChooser(&z, 0)
		hot := 0
		for range 10000 {
			if string(k.next()) == "user-0" {
				hot++
			}
		}
		// Uniform would give ~10; s=1.1 over 1000 keys gives the top key ~15 %.
		if hot < 500 {
			t.Errorf("top key drawn %d of 10000 times, want a hot key", hot)
		}
	})
	t.Run("seq visits every key once per Keys requests", func(t *testing.T) {
		// 4 connections over 1000 keys: the workers' stripes together
		// cover the key space exactly once in 1000 requests.
		sc := cfg
		sc.KeyDist, sc.Connections = DistSeq, 4
		seen := map[string]int{}
		for w := range sc.Connections {
			k := newKeyChooser(&sc, w)
			for range sc.Keys / sc.Connections {
				seen[string(k.next())]++
			}
		}
		if len(seen) != sc.Keys {
			t.Fatalf("%d distinct keys in %d requests, want %d", len(seen), sc.Keys, sc.Keys)
		}
		for key, n := range seen {
			if n != 1 {
				t.Fatalf("key %s sent %d times", key, n)
			}
		}
		// Past the end it wraps round to the worker's first key.
		k := newKeyChooser(&sc, 1)
		first := string(k.next())
		for range sc.Keys/sc.Connections - 1 {
			k.next()
		}
		if again := string(k.next()); again != first {
			t.Errorf("after a full stripe got %s, want %s again", again, first)
		}
	})
	t.Run("no keys", func(t *testing.T) {
		c := DefaultConfig()
		if newKeyChooser(&c, 0) != nil {
			t.Error("want nil without keys")
		}
	})
}

func TestTransportCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), CauseRefused},
		{fasthttp.ErrTimeout, CauseTimeout},
		{fasthttp.ErrDialTimeout, CauseConnectTimeout},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), CauseReset},
		{fasthttp.ErrConnectionClosed, CauseClosed},
		{io.EOF, CauseClosed},
		{errors.New("tls: bad certificate"), CauseOther},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := transportCause(tt.err); got != tt.want {
				t.Errorf("transportCause(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestDistribution(t *testing.T) {
	h := newHistogram()
	for range 900 {
		recordClamped(h, int64(time.Millisecond))
	}
	for range 100 {
		recordClamped(h, int64(300*time.Millisecond)) // a second mode: the stall
	}
	rows := distribution(h)
	if len(rows) != distributionRows {
		t.Fatalf("%d rows", len(rows))
	}
	var sum int64
	for i, r := range rows {
		sum += r.Count
		if i > 0 && r.UpTo <= rows[i-1].UpTo {
			t.Errorf("row %d edge %v not above %v", i, r.UpTo, rows[i-1].UpTo)
		}
	}
	if sum != 1000 || rows[0].Count != 900 || rows[len(rows)-1].Count != 100 || rows[len(rows)-1].Cumulative != 100 {
		t.Errorf("rows %+v", rows)
	}
	if distribution(newHistogram()) != nil {
		t.Error("empty histogram: want no rows")
	}
}

func TestFmtDur(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"},
		{1500 * time.Nanosecond, "1.5µs"},
		{830 * time.Microsecond, "830µs"},
		{1234 * time.Microsecond, "1.23ms"},
		{45670 * time.Microsecond, "45.7ms"},
		{2500 * time.Millisecond, "2.5s"},
		{150 * time.Second, "150s"},
	}
	for _, tt := range tests {
		if got := fmtDur(tt.in); got != tt.want {
			t.Errorf("fmtDur(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPlotSVG(t *testing.T) {
	h := newHistogram()
	for i := range 1000 {
		recordClamped(h, int64(i+1)*int64(time.Microsecond))
	}
	var buf bytes.Buffer
	if err := WritePlotSVG(&buf, "a <b> & c", []Series{{Name: "A", Hist: h}, {Name: "empty", Hist: newHistogram(), Dashed: true}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"<svg", "a &lt;b&gt; &amp; c", "99.9%", "latency (ms)", "<polyline"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if n := bytes.Count(buf.Bytes(), []byte("<polyline")); n != 1 {
		t.Errorf("%d curves, want 1 (the empty series is skipped):\n%s", n, out)
	}
}

// TestRecordDoesNotAllocate: recording a response of a known cell is the
// steady state of the hot loop.
func TestRecordDoesNotAllocate(t *testing.T) {
	s := newShard()
	x := &sample{corrected: 1e6, uncorrected: 1e6, status: 503, cell: []byte("stable-a"), cgErr: []byte("upstream_timeout")}
	s.record(x)
	if n := testing.AllocsPerRun(1000, func() { s.record(x) }); n != 0 {
		t.Errorf("record allocates %v times per call", n)
	}
	for _, dist := range []string{DistZipf, DistSeq} {
		k := newKeyChooser(&Config{Keys: 1000, KeyDist: dist, KeyPrefix: "user-", Connections: 3}, 0)
		if n := testing.AllocsPerRun(1000, func() { k.next() }); n != 0 {
			t.Errorf("%s key choice allocates %v times per call", dist, n)
		}
	}
}

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progressLine{w: &buf, label: "round 1/3 A "}
	h := newHistogram()
	recordClamped(h, int64(2*time.Millisecond))
	p.Observe(Interval{Length: time.Second, Elapsed: 3 * time.Second, Requests: 1000, Errors: 10, Histogram: h, Total: h})
	got := buf.String()
	for _, want := range []string{"\r", "round 1/3 A", "3.0s", "1000 req/s", "errors 10 (1.00%)", "p99 2ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
	p.clear()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Errorf("clear did not erase the line: %q", buf.String())
	}
	if isTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0.9, 1}, {1, 1}, {1.1, 2}, {2.2, 2.5}, {26, 50}, {0.031, 0.05}, {130, 200}, {24, 25},
	}
	for _, tt := range tests {
		if got := niceStep(tt.in); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
