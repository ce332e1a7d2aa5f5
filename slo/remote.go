package slo

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Delta is one node's data for one cell over whole, complete intervals:
// what the gossip layer ships to the other proxy nodes every tick so the
// decider judges on cluster-wide SLIs. Values are absolute per interval,
// not increments, so applying a delta twice (or an overlapping one) is
// harmless: the newer copy of an interval replaces the older.
type Delta struct {
	Node string `json:"node"`
	Cell string `json:"cell"`
	// Interval and Slice are the sender's count-slot and histogram-slice
	// widths; a receiver with other widths rejects the delta.
	Interval time.Duration `json:"interval_ns"`
	Slice    time.Duration `json:"slice_ns"`
	// Through is the end of the newest interval included: pass it as the
	// next ExportDelta's since.
	Through time.Time        `json:"through"`
	Counts  []IntervalCounts `json:"counts"`
	Hists   []SliceHist      `json:"hists"`
}

// IntervalCounts are one count-ring interval's counts; Epoch is the Unix
// time divided by the interval width (nodes' clocks are assumed NTP-close).
type IntervalCounts struct {
	Epoch      int64  `json:"epoch"`
	Requests   uint64 `json:"requests"`
	AvailBad   uint64 `json:"availability_bad"`
	LatencyBad uint64 `json:"latency_bad"`
	TTFBBad    uint64 `json:"ttfb_bad"`
}

// SliceHist is one complete histogram slice in sparse form: Idx are
// HdrHistogram count indexes (1 µs–60 s, 3 significant figures), N their
// counts.
type SliceHist struct {
	Epoch    int64    `json:"epoch"`
	TotalIdx []uint16 `json:"total_idx"`
	TotalN   []uint32 `json:"total_n"`
	TTFBIdx  []uint16 `json:"ttfb_idx"`
	TTFBN    []uint32 `json:"ttfb_n"`
}

// ExportDelta returns this node's data for cell from since (rounded down to
// whole intervals and slices) up to the last complete interval and slice.
// Empty intervals and slices are left out. node names this proxy node. The
// histogram lists share immutable memory with the registry: marshal them,
// do not modify them.
func (r *Registry) ExportDelta(node, cell string, since time.Time) Delta {
	cfg := r.cfg.Load()
	now := r.now()
	d := Delta{Node: node, Cell: cell, Interval: cfg.Interval, Slice: cfg.HistogramSlice}
	iv, sl := int64(cfg.Interval), int64(cfg.HistogramSlice)
	hi := now.UnixNano()/iv - 1
	d.Through = time.Unix(0, (hi+1)*iv)
	c := r.lookup(cell)
	if c == nil {
		return d
	}
	c.counts.span(since.UnixNano()/iv, hi, func(ep, slot int64) {
		var k counts
		for i := range c.counts.shards {
			k.add(c.counts.shards[i][slot].load())
		}
		if k.Requests != 0 {
			d.Counts = append(d.Counts, IntervalCounts{Epoch: ep, Requests: k.Requests,
				AvailBad: k.AvailBad, LatencyBad: k.LatencyBad, TTFBBad: k.TTFBBad})
		}
	})
	// Slices before the one now falls in are complete.
	c.hists.span(since.UnixNano()/sl, now.UnixNano()/sl-1, func(ep, slot int64) {
		s := &c.hists.slices[slot]
		t, f := sealed(&s.sealedTotal, &s.total, ep), sealed(&s.sealedTTFB, &s.ttfb, ep)
		if len(t.idx) != 0 || len(f.idx) != 0 {
			d.Hists = append(d.Hists, SliceHist{Epoch: ep, TotalIdx: t.idx, TotalN: t.n, TTFBIdx: f.idx, TTFBN: f.n})
		}
	})
	return d
}

// MergeRemote adds another node's delta to the view that Snapshot, Judge,
// BurnRates and the burn-rate gauges read, keyed by (node, cell). Never
// merge this node's own deltas. Data older than the rings' reach is
// dropped.
func (r *Registry) MergeRemote(d Delta) error {
	cfg := r.cfg.Load()
	if d.Interval != cfg.Interval || d.Slice != cfg.HistogramSlice {
		return fmt.Errorf("merge delta from %s: widths %v/%v differ from ours %v/%v",
			d.Node, d.Interval, d.Slice, cfg.Interval, cfg.HistogramSlice)
	}
	if d.Node == "" || d.Cell == "" {
		return errors.New("merge delta: node and cell must be named")
	}
	for _, h := range d.Hists {
		if len(h.TotalIdx) != len(h.TotalN) || len(h.TTFBIdx) != len(h.TTFBN) {
			return fmt.Errorf("merge delta from %s: histogram slice %d has mismatched index and count lists", d.Node, h.Epoch)
		}
		if !indexesValid(h.TotalIdx) || !indexesValid(h.TTFBIdx) {
			return fmt.Errorf("merge delta from %s: histogram slice %d has an index out of range", d.Node, h.Epoch)
		}
	}
	nowNs := r.now().UnixNano()
	ce, he := nowNs/int64(cfg.Interval), nowNs/int64(cfg.HistogramSlice)
	// A peer's clock may run a little ahead; anything further ahead, or
	// older than the rings reach, is dropped.
	r.remote.merge(d, [2]int64{ce - r.ringSlots, ce + 2}, [2]int64{he - r.histSlots, he + 2})
	return nil
}

func indexesValid(idx []uint16) bool {
	for _, i := range idx {
		if int(i) >= histLen {
			return false
		}
	}
	return true
}

// remoteCell is the merged deltas of one (node, cell).
type remoteCell struct {
	// counts is a ring of the epochs merge keeps: epoch e in slot e mod
	// len, valid when its tag says e (a judgement sums many short windows;
	// a map cost a fleet simulation half its time).
	counts []remoteCount
	hists  map[int64]SliceHist
}

// remoteCount is one remote interval's counts, tagged with its epoch.
type remoteCount struct {
	ep  int64
	set bool
	c   counts
}

// slot returns the ring slot of epoch ep.
func (rc *remoteCell) slot(ep int64) *remoteCount {
	n := int64(len(rc.counts))
	return &rc.counts[(ep%n+n)%n]
}

// remoteStore holds other proxy nodes' data, keyed by (node, cell).
type remoteStore struct {
	// mu guards byCell and its maps.
	mu     sync.RWMutex
	byCell map[string]map[string]*remoteCell // cell → node → data
}

func (s *remoteStore) init() { s.byCell = make(map[string]map[string]*remoteCell) }

// merge applies d, keeping only epochs within the given [lo, hi] bounds.
func (s *remoteStore) merge(d Delta, countBounds, histBounds [2]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := s.byCell[d.Cell]
	if nodes == nil {
		nodes = make(map[string]*remoteCell)
		s.byCell[d.Cell] = nodes
	}
	rc := nodes[d.Node]
	if rc == nil {
		rc = &remoteCell{counts: make([]remoteCount, countBounds[1]-countBounds[0]+1), hists: make(map[int64]SliceHist)}
		nodes[d.Node] = rc
	}
	in := func(ep int64, b [2]int64) bool { return ep >= b[0] && ep <= b[1] }
	for _, c := range d.Counts {
		if in(c.Epoch, countBounds) {
			*rc.slot(c.Epoch) = remoteCount{ep: c.Epoch, set: true,
				c: counts{Requests: c.Requests, AvailBad: c.AvailBad, LatencyBad: c.LatencyBad, TTFBBad: c.TTFBBad}}
		}
	}
	for _, h := range d.Hists {
		if in(h.Epoch, histBounds) {
			rc.hists[h.Epoch] = h
		}
	}
	for i := range rc.counts {
		if rc.counts[i].set && !in(rc.counts[i].ep, countBounds) {
			rc.counts[i] = remoteCount{}
		}
	}
	for ep := range rc.hists {
		if !in(ep, histBounds) {
			delete(rc.hists, ep)
		}
	}
}

// addTo adds every remote node's data for cell in the epoch ranges to dst.
func (s *remoteStore) addTo(cell string, lo, hi, hlo, hhi int64, dst *sample, kinds histKinds) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, rc := range s.byCell[cell] {
		for ep := max(lo, hi-int64(len(rc.counts))+1); ep <= hi; ep++ {
			if sl := rc.slot(ep); sl.set && sl.ep == ep {
				dst.counts.add(sl.c)
			}
		}
		if kinds&(histTotal|histTTFB) == 0 {
			continue
		}
		for ep, h := range rc.hists {
			if ep < hlo || ep > hhi {
				continue
			}
			if kinds&histTotal != 0 {
				(&sparseHist{idx: h.TotalIdx, n: h.TotalN}).addTo(&dst.total)
			}
			if kinds&histTTFB != 0 {
				(&sparseHist{idx: h.TTFBIdx, n: h.TTFBN}).addTo(&dst.ttfb)
			}
		}
	}
}
