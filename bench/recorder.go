package bench

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range and precision. Values are nanoseconds, the unit
// HdrHistogram log tools assume (the log's max column is value/1e6 = ms).
// The top is an hour because corrected latencies of a generator that fell
// far behind its schedule can exceed any request timeout.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Hour)
	histSigFigs = 3
)

// maxCells bounds the distinct X-Cellgate-Cell values tracked; a target that
// sends a unique value per response must not exhaust memory (each cell
// keeps a histogram of ~180 KB).
const maxCells = 64

// cellOverflow collects cells beyond maxCells.
const cellOverflow = "(other)"

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// recordClamped records v, clamping values beyond the trackable range so
// that an outlier is counted at the top instead of being lost.
func recordClamped(h *hdrhistogram.Histogram, v int64) {
	if v > histHighest {
		v = histHighest
	}
	if v < 0 {
		v = 0
	}
	_ = h.RecordValue(v) // cannot fail within [0, histHighest]
}

// sample is one measured request as the sending goroutine saw it.
type sample struct {
	corrected   int64  // ns from intended send time to response
	uncorrected int64  // ns from actual send time to response
	status      int    // 0 for transport errors
	cause       string // transport cause; "" when a response arrived
	cell        []byte // X-Cellgate-Cell, may be empty
	cgErr       []byte // X-Cellgate-Error, may be empty
	otherErr    error  // the error when cause is CauseOther
}

// cellAgg is one cell's share of a shard.
type cellAgg struct {
	requests int64
	errors   int64
	hist     *hdrhistogram.Histogram
}

// shard is one slice of the recording state. Sending goroutines are spread
// over a few shards so that recording (hdrhistogram is not thread-safe)
// takes a short, rarely contended lock instead of one global one.
type shard struct {
	// mu guards every field below.
	mu          sync.Mutex
	interval    *hdrhistogram.Histogram // corrected latencies since the last tick
	uncorrected *hdrhistogram.Histogram // cumulative, from actual send time
	reqs        int64                   // attempts since the last tick
	errs        int64                   // errors since the last tick
	status      [600]int64              // responses by status code
	errStatus   [600]int64              // failed responses without X-Cellgate-Error, by status
	causes      map[string]int64        // transport errors by cause
	cgErrs      map[string]*int64       // failed responses by X-Cellgate-Error value
	cells       map[string]*cellAgg
}

func newShard() *shard {
	return &shard{
		interval:    newHistogram(),
		uncorrected: newHistogram(),
		causes:      make(map[string]int64),
		cgErrs:      make(map[string]*int64),
		cells:       make(map[string]*cellAgg),
	}
}

// record adds one measured request. It allocates only the first time a new
// cell, cause or unusual error is seen.
func (s *shard) record(x *sample) {
	s.mu.Lock()
	s.reqs++
	if x.cause != "" {
		s.errs++
		if x.cause == CauseOther && x.otherErr != nil {
			s.causes[CauseOther+": "+x.otherErr.Error()]++
		} else {
			s.causes[x.cause]++
		}
		s.mu.Unlock()
		return
	}
	recordClamped(s.interval, x.corrected)
	recordClamped(s.uncorrected, x.uncorrected)
	if x.status > 0 && x.status < len(s.status) {
		s.status[x.status]++
	}
	failed := len(x.cgErr) > 0 || isErrorStatus(x.status)
	if failed {
		s.errs++
		s.countCauseLocked(x)
	}
	c := s.cellLocked(x.cell)
	c.requests++
	if failed {
		c.errors++
	}
	recordClamped(c.hist, x.corrected)
	s.mu.Unlock()
}

// countCauseLocked names a failed response: the proxy's own error header
// wins over the status, which is usually the proxy's mapping of it.
func (s *shard) countCauseLocked(x *sample) {
	if len(x.cgErr) > 0 {
		if n, ok := s.cgErrs[string(x.cgErr)]; ok { // the lookup does not allocate
			*n++
			return
		}
		n := int64(1)
		s.cgErrs[string(x.cgErr)] = &n
		return
	}
	if x.status > 0 && x.status < len(s.errStatus) {
		s.errStatus[x.status]++
	}
}

// cellLocked returns the aggregate of the named cell, creating it.
func (s *shard) cellLocked(name []byte) *cellAgg {
	if c, ok := s.cells[string(name)]; ok {
		return c
	}
	key := string(name)
	if len(s.cells) >= maxCells {
		key = cellOverflow
		if c, ok := s.cells[key]; ok {
			return c
		}
	}
	c := &cellAgg{hist: newHistogram()}
	s.cells[key] = c
	return c
}

// swapInterval hands the interval histogram and counters to the collector
// and installs spare (reset) in its place.
func (s *shard) swapInterval(spare *hdrhistogram.Histogram) (h *hdrhistogram.Histogram, reqs, errs int64) {
	s.mu.Lock()
	h, s.interval = s.interval, spare
	reqs, errs = s.reqs, s.errs
	s.reqs, s.errs = 0, 0
	s.mu.Unlock()
	return h, reqs, errs
}
