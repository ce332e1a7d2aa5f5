package slo

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The histograms use HdrHistogram's exact bucket layout for values in
// microseconds from 1 µs to 60 s at 3 significant figures (the layout of
// hdrhistogram.New(histLowest, histHighest, histSigFigs)), but keep the
// counts in atomic words so recording needs no lock. Reads convert to an
// *hdrhistogram.Histogram with Import when a caller wants one; a test checks
// that our index arithmetic matches the library's bucket for bucket.
const (
	histLowest  = 1
	histHighest = 60_000_000 // 60 s in µs
	histSigFigs = 3

	histHalfMag  = 10               // log2(subBucketHalfCount) for 3 significant figures
	histHalf     = 1 << histHalfMag // sub-buckets per chunk (half a bucket)
	histSubMask  = 2*histHalf - 1
	histBuckets  = 16                           // buckets needed to cover 60 s from 2048 µs
	histLen      = (histBuckets + 1) * histHalf // 17408 counts, as in hdrhistogram
	histChunks   = histLen / histHalf           // counts are allocated per 1024-count chunk
	histMaxIndex = histLen - 1
)

// histIndex is HdrHistogram's countsIndexFor for our layout; values outside
// [0, 60 s] are clamped so a hung request still counts as "very slow".
func histIndex(us int64) int {
	if us < 0 {
		us = 0
	} else if us > histHighest {
		us = histHighest
	}
	b := 64 - bits.LeadingZeros64(uint64(us)|histSubMask) - (histHalfMag + 1)
	return (b+1)<<histHalfMag + int(us>>uint(b)) - histHalf
}

// histLowestValue is the lowest value (µs) counted at index i.
func histLowestValue(i int) int64 {
	if i < 2*histHalf {
		return int64(i)
	}
	b := i>>histHalfMag - 1
	return int64(i&(histHalf-1)+histHalf) << uint(b)
}

// histWidth is the width (µs) of the value range counted at index i.
func histWidth(i int) int64 {
	if i < 2*histHalf {
		return 1
	}
	return 1 << uint(i>>histHalfMag-1)
}

// durUs converts a duration to whole microseconds.
func durUs(d time.Duration) int64 { return int64(d / time.Microsecond) }

// chunk is one lazily allocated run of 1024 counts.
type chunk [histHalf]atomic.Uint32

// atomicHist is a lock-free histogram: recorders add to counts atomically;
// chunks are allocated on first touch (a cell's latencies usually span a few
// octaves, so a few of 17 chunks). 32-bit counts are enough for one slice.
type atomicHist struct {
	chunks [histChunks]atomic.Pointer[chunk]
}

// add counts one value at index i.
func (h *atomicHist) add(i int) {
	p := &h.chunks[i>>histHalfMag]
	c := p.Load()
	if c == nil {
		c = h.grow(p)
	}
	c[i&(histHalf-1)].Add(1)
}

// grow allocates a chunk once; the loser of a race uses the winner's.
func (h *atomicHist) grow(p *atomic.Pointer[chunk]) *chunk {
	c := new(chunk)
	if p.CompareAndSwap(nil, c) {
		return c
	}
	return p.Load()
}

// addTo adds this histogram's counts into d.
func (h *atomicHist) addTo(d *dist) {
	for ci := range h.chunks {
		c := h.chunks[ci].Load()
		if c == nil {
			continue
		}
		dst := d.chunk(ci)
		for j := range c {
			if v := c[j].Load(); v != 0 {
				dst[j] += int64(v)
				d.n += int64(v)
			}
		}
	}
}

// drain moves every count into d and zeroes h (chunks stay allocated).
func (h *atomicHist) drain(d *dist) {
	for ci := range h.chunks {
		c := h.chunks[ci].Load()
		if c == nil {
			continue
		}
		var dst *[histHalf]int64
		for j := range c {
			if v := c[j].Swap(0); v != 0 {
				if dst == nil {
					dst = d.chunk(ci)
				}
				dst[j] += int64(v)
				d.n += int64(v)
			}
		}
	}
}

// dist is a merged, plain (single-owner) histogram in the same layout.
type dist struct {
	chunks [histChunks]*[histHalf]int64
	n      int64
	// pool, when set, supplies zeroed chunks and takes them back in
	// release; readers that merge every tick then allocate nothing.
	pool *sync.Pool
}

func (d *dist) chunk(ci int) *[histHalf]int64 {
	if d.chunks[ci] == nil {
		if d.pool != nil {
			d.chunks[ci] = d.pool.Get().(*[histHalf]int64)
		} else {
			d.chunks[ci] = new([histHalf]int64)
		}
	}
	return d.chunks[ci]
}

// release zeroes d's chunks and returns them to its pool; d is empty after.
func (d *dist) release() {
	for ci, c := range d.chunks {
		if c != nil && d.pool != nil {
			clear(c[:])
			d.pool.Put(c)
		}
		d.chunks[ci] = nil
	}
	d.n = 0
}

// newChunkPool returns a pool of zeroed chunks.
func newChunkPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new([histHalf]int64) }}
}

// addDist adds o into d.
func (d *dist) addDist(o *dist) {
	for ci, c := range o.chunks {
		if c == nil {
			continue
		}
		dst := d.chunk(ci)
		for j := range c {
			dst[j] += c[j]
		}
	}
	d.n += o.n
}

// each calls f for every non-zero count in ascending value order.
func (d *dist) each(f func(i int, n int64)) {
	for ci, c := range d.chunks {
		if c == nil {
			continue
		}
		for j, v := range c {
			if v != 0 {
				f(ci<<histHalfMag+j, v)
			}
		}
	}
}

// quantile returns the value (µs) at quantile q in [0,1] with
// HdrHistogram's semantics: the highest value equivalent to the bucket that
// holds the q-th count. It returns 0 for an empty histogram.
func (d *dist) quantile(q float64) int64 {
	var out [1]int64
	d.quantiles([]float64{q}, out[:])
	return out[0]
}

// quantiles fills out[k] with quantile qs[k] (qs ascending) in one pass.
func (d *dist) quantiles(qs []float64, out []int64) {
	if d.n == 0 {
		clear(out)
		return
	}
	k := 0
	want := max(int64(qs[0]*float64(d.n)+0.5), 1)
	var seen int64
	for ci, c := range d.chunks {
		if c == nil {
			continue
		}
		for j, v := range c {
			if v == 0 {
				continue
			}
			seen += v
			for seen >= want {
				i := ci<<histHalfMag + j
				out[k] = histLowestValue(i) + histWidth(i) - 1
				if k++; k == len(qs) {
					return
				}
				want = max(int64(qs[k]*float64(d.n)+0.5), 1)
			}
		}
	}
	for ; k < len(qs); k++ {
		out[k] = histHighest
	}
}

// countAbove returns how many values are above limit µs (bucket
// granularity: a bucket counts as above when its lowest value is).
func (d *dist) countAbove(limit int64) int64 {
	var n int64
	d.each(func(i int, v int64) {
		if histLowestValue(i) > limit {
			n += v
		}
	})
	return n
}

// Histogram returns d as an HdrHistogram (µs, 1 µs–60 s, 3 significant
// figures), for callers that want the library's API (Encode, Merge, …).
func (d *dist) Histogram() *hdrhistogram.Histogram {
	counts := make([]int64, histLen)
	d.each(func(i int, v int64) { counts[i] = v })
	return hdrhistogram.Import(&hdrhistogram.Snapshot{
		LowestTrackableValue:  histLowest,
		HighestTrackableValue: histHighest,
		SignificantFigures:    histSigFigs,
		Counts:                counts,
	})
}

// sparseHist is an immutable sparse copy of a complete slice's histogram.
type sparseHist struct {
	epoch int64
	idx   []uint16 // histLen < 1<<16
	n     []uint32
}

// sealed returns the sparse copy of h for epoch ep, building and caching it
// on first use. Two readers may build it at once; either copy is right.
func sealed(p *atomic.Pointer[sparseHist], h *atomicHist, ep int64) *sparseHist {
	if s := p.Load(); s != nil && s.epoch == ep {
		return s
	}
	s := &sparseHist{epoch: ep}
	for ci := range h.chunks {
		c := h.chunks[ci].Load()
		if c == nil {
			continue
		}
		for j := range c {
			if v := c[j].Load(); v != 0 {
				s.idx = append(s.idx, uint16(ci<<histHalfMag+j))
				s.n = append(s.n, v)
			}
		}
	}
	p.Store(s)
	return s
}

// addTo adds the copy's counts into d.
func (s *sparseHist) addTo(d *dist) {
	var dst *[histHalf]int64
	cur, total := -1, int64(0)
	for k, i := range s.idx { // ascending, so chunks change rarely
		if ci := int(i) >> histHalfMag; ci != cur {
			dst, cur = d.chunk(ci), ci
		}
		dst[int(i)&(histHalf-1)] += int64(s.n[k])
		total += int64(s.n[k])
	}
	d.n += total
}
