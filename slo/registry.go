package slo

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Registry owns the cells' recorders and the configuration they are judged
// by. Its methods are safe for concurrent use.
type Registry struct {
	now func() time.Time
	// realClock is true when now is time.Now; Record then reads only the
	// monotonic clock (half the cost of time.Now) relative to base.
	realClock bool
	base      time.Time
	baseNs    int64

	// cfg is the current configuration; th the thresholds Record reads.
	// Both are replaced whole by SetConfig.
	cfg atomic.Pointer[Config]
	th  atomic.Pointer[thresholds]

	// ringSlots and histSlots are fixed at creation: rings are sized once
	// so Cell pointers stay valid across config reloads.
	ringSlots, histSlots int64

	// mu guards cells (get-or-create); lookups of existing cells take the
	// read lock only.
	mu    sync.RWMutex
	cells map[string]*Cell

	remote remoteStore

	// sigMu guards signals (cell → its external signals). Signals live
	// apart from the recorders so that posting a signal for a cell that
	// takes no traffic does not allocate rings.
	sigMu   sync.Mutex
	signals map[string]*signalSet

	// chunks recycles the histogram chunks of read-side merges.
	chunks *sync.Pool

	// alarms wakes the rollout controller when a watched cell records
	// evidence (alarm.go); 1-buffered, so wake-ups coalesce.
	alarms chan struct{}
	// watchMu guards watched, the cells Watch last marked.
	watchMu sync.Mutex
	watched map[string]struct{}
	// fleetSize is how many nodes judge at once (SetFleetSize).
	fleetSize atomic.Int64
}

// thresholds are the per-record classification limits.
type thresholds struct {
	latency, ttfb time.Duration
}

// NewRegistry returns a registry judging by cfg (zero fields take
// DefaultConfig values). now == nil means time.Now.
func NewRegistry(cfg Config, now func() time.Time) *Registry {
	real := now == nil
	if real {
		now = time.Now
	}
	cfg = cfg.withDefaults()
	base := now()
	r := &Registry{now: now, realClock: real, base: base, baseNs: base.UnixNano(), cells: make(map[string]*Cell), chunks: newChunkPool(),
		signals: make(map[string]*signalSet), alarms: make(chan struct{}, 1)}
	r.fleetSize.Store(1)
	r.ringSlots = cfg.ringSlots()
	r.histSlots = int64(cfg.HistogramSpan/cfg.HistogramSlice) + 3
	r.publish(cfg)
	r.remote.init()
	return r
}

func (r *Registry) publish(cfg Config) {
	r.cfg.Store(&cfg)
	r.th.Store(&thresholds{latency: cfg.LatencyThreshold, ttfb: cfg.TTFBThreshold})
}

// nowNs is the hot path's clock: Unix nanoseconds of now.
func (r *Registry) nowNs() int64 {
	if r.realClock {
		return r.baseNs + int64(time.Since(r.base))
	}
	return r.now().UnixNano()
}

// Config returns the configuration in force (defaults applied).
func (r *Registry) Config() Config { return *r.cfg.Load() }

// SetConfig replaces the configuration (a reload). Cells, their data and
// their pointers survive. Thresholds apply to requests recorded from now
// on. A config whose windows need a longer count ring, or a different
// interval or histogram slicing, than the registry was built with is
// rejected: those need a new registry (a restart).
func (r *Registry) SetConfig(cfg Config) error {
	cfg = cfg.withDefaults()
	if err := r.CheckConfig(cfg); err != nil {
		return err
	}
	r.publish(cfg)
	return nil
}

// CheckConfig reports whether SetConfig(cfg) would succeed, changing
// nothing: cfg is valid, keeps the interval and histogram slicing, and its
// windows fit the rings this registry was built with.
func (r *Registry) CheckConfig(cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("slo config: %w", err)
	}
	old := r.cfg.Load()
	if cfg.Interval != old.Interval || cfg.HistogramSlice != old.HistogramSlice ||
		cfg.ringSlots() > r.ringSlots || int64(cfg.HistogramSpan/cfg.HistogramSlice)+3 > r.histSlots {
		return fmt.Errorf("slo config: windows, interval or histogram slicing grew beyond what this registry holds; restart to apply")
	}
	return nil
}

// Cell returns the named cell's recorder, creating it on first use. The
// pointer is stable for the life of the registry.
func (r *Registry) Cell(name string) *Cell {
	r.mu.RLock()
	c := r.cells[name]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.cells[name]; c != nil {
		return c
	}
	cfg := r.cfg.Load()
	nowNs := r.now().UnixNano()
	c = &Cell{
		name:   name,
		reg:    r,
		counts: newCountRing(int64(cfg.Interval), r.ringSlots, nowNs),
		hists:  newHistRing(int64(cfg.HistogramSlice), r.histSlots, nowNs),
		fine:   newCountRing(int64(cfg.Interval)/fineParts, fineParts*fineReach+2, nowNs),
	}
	r.cells[name] = c
	return c
}

// lookup returns the named cell or nil, without creating it.
func (r *Registry) lookup(name string) *Cell {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cells[name]
}

// Cells returns the names of all cells, in no particular order.
func (r *Registry) Cells() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.cells))
	for n := range r.cells {
		names = append(names, n)
	}
	return names
}
