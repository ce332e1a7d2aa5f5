package proxy

import (
	"sync"
	"time"
)

// shareWindow turns the per-cell served counters into the share of
// requests each cell actually served over the last shareSpan: the truthful
// counterpart of its weight while pins hold sessions elsewhere. Counters
// are sampled when read (scrape, status), never on the request path.
type shareWindow struct {
	mu      sync.Mutex
	samples []shareSample // guarded by mu; oldest first, at most one per second
}

type shareSample struct {
	at     time.Time
	counts map[string]uint64
}

// shareSpan is the window shares are measured over: long enough to hold a
// few scrapes, short enough to follow a rollout step.
const shareSpan = time.Minute

func (w *shareWindow) init(now time.Time) {
	w.samples = []shareSample{{at: now, counts: map[string]uint64{}}}
}

// shares samples counts at now and returns each cell's share of the
// requests served since the oldest sample within shareSpan (or since start).
// Cells with no request in the window get 0.
func (w *shareWindow) shares(now time.Time, counts map[string]uint64) map[string]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last := w.samples[len(w.samples)-1]; now.Sub(last.at) >= time.Second {
		w.samples = append(w.samples, shareSample{at: now, counts: counts})
	}
	// Keep the newest sample at least shareSpan old as the window's base.
	for len(w.samples) > 2 && now.Sub(w.samples[1].at) >= shareSpan {
		w.samples = w.samples[1:]
	}
	base := w.samples[0].counts
	var total uint64
	for name, n := range counts {
		total += n - base[name]
	}
	out := make(map[string]float64, len(counts))
	for name, n := range counts {
		if total > 0 {
			out[name] = float64(n-base[name]) / float64(total)
		} else {
			out[name] = 0
		}
	}
	return out
}

// Shares returns the share of requests each cell served over about the
// last minute (see shareWindow), for cellgate_cell_share and the judge.
func (p *Proxy) Shares() map[string]float64 {
	ss := p.snap.Load().sessions
	ss.mu.Lock()
	counts := make(map[string]uint64, len(ss.served))
	for name, c := range ss.served {
		counts[name] = c.Load()
	}
	ss.mu.Unlock()
	return ss.shares.shares(p.clock(), counts)
}
