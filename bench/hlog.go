package bench

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// HlogWriter writes an HdrHistogram interval log (format 1.3, the .hlog that
// HistogramLogAnalyzer, HdrHistogram's LogProcessor and hdrhistogram-go's
// reader read): one line per interval with the interval's start (seconds
// since the log's StartTime), its length in seconds, its max in ms and the
// compressed histogram of nanosecond latencies.
//
// Encoding is hdrhistogram-go's HistogramLogWriter. Its v1.1.2 interval
// line takes integer millisecond timestamps and writes the interval's end
// where the format has its length, so HlogWriter lets it write the line and
// then replaces the two timestamp columns with exact values.
//
// It is safe for concurrent use; use Observe as Hooks.OnInterval.
type HlogWriter struct {
	// mu guards every field below.
	mu    sync.Mutex
	lw    *hdrhistogram.HistogramLogWriter
	fix   *timestampFixer
	start time.Time
	tag   string
	err   error
}

// NewHlogWriter writes the log header to out. Interval start times are
// written relative to start.
func NewHlogWriter(out io.Writer, start time.Time) (*HlogWriter, error) {
	fix := &timestampFixer{out: out}
	h := &HlogWriter{lw: hdrhistogram.NewHistogramLogWriter(fix), fix: fix, start: start}
	steps := []func() error{
		func() error { return h.lw.OutputComment("[Logged with cellgate bench]") },
		h.lw.OutputLogFormatVersion,
		func() error {
			// Written by hand: OutputStartTime drops the milliseconds.
			sec := float64(start.UnixMilli()) / 1000
			return h.lw.OutputComment(fmt.Sprintf("[StartTime: %.3f (seconds since epoch), %s]", sec, start.Format(time.RFC3339)))
		},
		h.lw.OutputLegend,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("write hlog header: %w", err)
		}
	}
	return h, nil
}

// SetTag tags the following intervals (compare mode tags each target).
// Tags must not contain commas or spaces.
func (h *HlogWriter) SetTag(tag string) {
	h.mu.Lock()
	h.tag = tag
	h.mu.Unlock()
}

// Observe writes one interval; it has the shape of Hooks.OnInterval. The
// first write error is kept and returned by Err.
func (h *HlogWriter) Observe(iv Interval) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil || iv.Histogram.TotalCount() == 0 && iv.Length == 0 {
		return
	}
	iv.Histogram.SetTag(h.tag)
	defer iv.Histogram.SetTag("")
	h.fix.startSec = iv.Start.Sub(h.start).Seconds()
	h.fix.lengthSec = iv.Length.Seconds()
	if err := h.lw.OutputIntervalHistogram(iv.Histogram); err != nil {
		h.err = fmt.Errorf("write hlog interval: %w", err)
	}
}

// Err returns the first error met while writing intervals.
func (h *HlogWriter) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// timestampFixer passes header lines through and rewrites the start and
// length columns of interval lines (one Write per line, which is how
// HistogramLogWriter writes).
type timestampFixer struct {
	out       io.Writer
	startSec  float64
	lengthSec float64
	buf       []byte
}

func (f *timestampFixer) Write(p []byte) (int, error) {
	if len(p) == 0 || p[0] == '#' || p[0] == '"' {
		return f.out.Write(p)
	}
	rest := p
	var tag []byte
	if bytes.HasPrefix(rest, []byte("Tag=")) {
		i := bytes.IndexByte(rest, ',')
		tag, rest = rest[:i+1], rest[i+1:]
	}
	// Skip the writer's start and end columns.
	for range 2 {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			return 0, fmt.Errorf("unexpected hlog line %q", p)
		}
		rest = rest[i+1:]
	}
	f.buf = append(f.buf[:0], tag...)
	f.buf = fmt.Appendf(f.buf, "%.3f,%.3f,", f.startSec, f.lengthSec)
	f.buf = append(f.buf, rest...)
	if _, err := f.out.Write(f.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
