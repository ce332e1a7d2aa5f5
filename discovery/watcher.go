package discovery

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Config tunes a Watcher ([discovery]).
type Config struct {
	// Interval is the longest a set goes without being re-resolved
	// (discovery.interval). Must be > 0.
	Interval time.Duration
	// Grace is how long the last good set is kept while lookups fail
	// (discovery.grace); after it the set is dropped, and a cell left with
	// no endpoint is down, so its users fail over. Zero: kept until a
	// lookup succeeds again — a DNS outage never empties a cell.
	Grace time.Duration
	// Timeout bounds one resolution of one target. Zero: Interval, but at
	// least 1 s (an SRV answer takes several queries, and a loaded host
	// must not turn a short interval into failed lookups) and at most 5 s.
	Timeout time.Duration
}

// Hooks are a Watcher's optional collaborators.
type Hooks struct {
	// Changed is called (from Run's goroutine, never concurrently) after
	// one or more sets changed. Nil: nobody is told; Addrs still answers.
	Changed func()
	// Logger receives lookup failures and set changes. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Watcher keeps the endpoint sets of its targets current.
type Watcher struct {
	cfg   Config
	res   Resolver
	hooks Hooks
	log   *slog.Logger
	kick  chan struct{} // SetTargets wakes Run

	// mu guards targets.
	mu      sync.Mutex
	targets map[string]*state // by Target.Raw
}

// state is one target's last resolution.
type state struct {
	t        Target
	addrs    []string          // last good set (nil before the first success)
	weights  map[string]Weight // its SRV priorities and weights (nil: dns:)
	good     time.Time         // when it was last confirmed
	next     time.Time         // when to resolve again
	err      error             // last lookup's failure (nil after a success)
	errSince time.Time         // first failure of the current streak
	expired  bool              // the set was dropped after Grace
	lookups  uint64
	failures uint64
}

// Status is one target as the admin API and metrics show it.
type Status struct {
	Target    string    `json:"target"`
	Endpoints []string  `json:"endpoints"`
	Resolved  time.Time `json:"resolved,omitzero"` // last good answer
	Error     string    `json:"error,omitempty"`   // last lookup's failure
	Since     time.Time `json:"failing_since,omitzero"`
	Expired   bool      `json:"expired,omitempty"` // set dropped after grace
	Lookups   uint64    `json:"lookups"`
	Failures  uint64    `json:"failures"`
	// Weights are the SRV priority and weight of each endpoint (srv: only).
	Weights map[string]Weight `json:"weights,omitempty"`
}

// New returns a watcher with no targets.
func New(cfg Config, res Resolver, hooks Hooks) *Watcher {
	w := &Watcher{cfg: cfg, res: res, hooks: hooks, log: hooks.Logger,
		kick: make(chan struct{}, 1), targets: map[string]*state{}}
	if w.log == nil {
		w.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if w.cfg.Timeout <= 0 {
		w.cfg.Timeout = min(max(cfg.Interval, time.Second), 5*time.Second)
	}
	return w
}

func (w *Watcher) now() time.Time {
	if w.hooks.Now != nil {
		return w.hooks.Now()
	}
	return time.Now()
}

// SetTargets makes ts the watched targets: known ones keep their sets,
// gone ones are forgotten, new ones are resolved once before it returns
// (so a node starts, or a reload applies, with their sets when DNS
// answers). It does not call Changed.
func (w *Watcher) SetTargets(ctx context.Context, ts []Target) {
	var fresh []*state
	w.mu.Lock()
	keep := map[string]*state{}
	for _, t := range ts {
		if s := w.targets[t.Raw]; s != nil {
			keep[t.Raw] = s
			continue
		}
		s := &state{t: t}
		keep[t.Raw] = s
		fresh = append(fresh, s)
	}
	w.targets = keep
	w.mu.Unlock()
	for _, s := range fresh {
		w.resolve(ctx, s)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Addrs returns the target's current endpoints (nil: none known).
func (w *Watcher) Addrs(raw string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.targets[raw]; s != nil {
		return slices.Clone(s.addrs)
	}
	return nil
}

// Weights returns the SRV priority and weight of each of the target's
// current endpoints (nil: a dns: target, or none known).
func (w *Watcher) Weights(raw string) map[string]Weight {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.targets[raw]; s != nil {
		return maps.Clone(s.weights)
	}
	return nil
}

// Status lists every target, sorted by name.
func (w *Watcher) Status() []Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Status, 0, len(w.targets))
	for _, s := range w.targets {
		st := Status{Target: s.t.Raw, Endpoints: slices.Clone(s.addrs), Resolved: s.good,
			Since: s.errSince, Expired: s.expired, Lookups: s.lookups, Failures: s.failures, Weights: maps.Clone(s.weights)}
		if s.err != nil {
			st.Error = s.err.Error()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Target < b.Target {
			return -1
		}
		if a.Target > b.Target {
			return 1
		}
		return 0
	})
	return out
}

// Run re-resolves targets as they fall due until ctx ends, calling
// Changed after a round that changed any set.
func (w *Watcher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.kick:
		}
		if w.round(ctx) && w.hooks.Changed != nil {
			w.hooks.Changed()
		}
		timer.Reset(w.untilNext())
	}
}

// round resolves every target that is due and reports whether a set changed.
func (w *Watcher) round(ctx context.Context) bool {
	now := w.now()
	w.mu.Lock()
	var due []*state
	for _, s := range w.targets {
		if !now.Before(s.next) {
			due = append(due, s)
		}
	}
	w.mu.Unlock()
	changed := false
	for _, s := range due {
		if w.resolve(ctx, s) {
			changed = true
		}
	}
	return changed
}

// untilNext is the wait before the earliest target falls due.
func (w *Watcher) untilNext() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.cfg.Interval
	now := w.now()
	for _, s := range w.targets {
		d = min(d, s.next.Sub(now))
	}
	return max(d, time.Millisecond)
}

// resolve looks s up once and records the outcome; it reports whether the
// set changed.
func (w *Watcher) resolve(ctx context.Context, s *state) bool {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	ans, err := w.res.Resolve(rctx, s.t)
	cancel()
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	s.lookups++
	if err != nil {
		s.failures++
		if s.err == nil {
			s.errSince = now
		}
		s.err = err
		s.next = now.Add(w.refresh(0))
		if w.cfg.Grace > 0 && s.addrs != nil && now.Sub(s.good) >= w.cfg.Grace {
			w.log.Error("discovery: lookups failing past grace; dropping the last good set", "target", s.t.Raw, "err", err, "since", s.errSince)
			s.addrs, s.weights, s.expired = nil, nil, true
			return true
		}
		w.log.Warn("discovery: lookup failed; keeping the last good set", "target", s.t.Raw, "err", err, "endpoints", len(s.addrs))
		return false
	}
	s.err, s.errSince, s.expired, s.good = nil, time.Time{}, false, now
	s.next = now.Add(w.refresh(ans.TTL))
	if slices.Equal(s.addrs, ans.Addrs) && s.addrs != nil && equalWeights(s.weights, ans.Weights) {
		return false
	}
	w.log.Info("discovery: endpoint set changed", "target", s.t.Raw, "endpoints", ans.Addrs, "weights", ans.Weights)
	s.addrs, s.weights = ans.Addrs, ans.Weights
	if s.addrs == nil {
		s.addrs = []string{} // resolved to nothing: known and empty
	}
	return true
}

// refresh is how long an answer is used: the interval, or its TTL when
// shorter, but never less than minRefresh so a TTL of 0 does not turn
// into a query loop.
func (w *Watcher) refresh(ttl time.Duration) time.Duration {
	d := w.cfg.Interval
	if ttl > 0 && ttl < d {
		d = max(ttl, min(d, minRefresh))
	}
	return d
}

// minRefresh is the shortest re-resolve period a short TTL can ask for.
const minRefresh = time.Second
