package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Response headers a cellgate node sets (see the architecture's request path).
const (
	HeaderCell  = "X-Cellgate-Cell"
	HeaderError = "X-Cellgate-Error"
)

// Hooks lets a caller watch a run as it happens. Every field is optional;
// nil means not called. Run returns only after the last hook call.
type Hooks struct {
	// OnResponse is called after every request, warm-up included, from the
	// goroutine that sent it. It must be safe for concurrent use and must
	// not block: it delays that connection's next request. The slices in
	// the Observation are reused afterwards; copy them to keep them.
	OnResponse func(Observation)

	// OnInterval is called once per Config.Interval of the measured phase
	// and once for the last, partial interval, from one goroutine. The
	// histograms are valid only during the call and must not be modified.
	OnInterval func(Interval)
}

// Observation is one request as the generator saw it.
type Observation struct {
	Worker   int           // index of the sending connection
	Key      []byte        // the key sent, nil without keys
	Cell     []byte        // X-Cellgate-Cell of the response, may be empty
	Status   int           // 0 when Err is set
	Err      error         // transport error, nil when a response arrived
	Failed   bool          // counted as an error (Err, 5xx or X-Cellgate-Error)
	Intended time.Duration // intended send time, since the run started
	Latency  time.Duration // from the intended send time to the response
	Warmup   bool          // sent during the warm-up, not in the Result
}

// Interval is one slice of the measured phase.
type Interval struct {
	Start     time.Time     // wall clock at the start of the interval
	Length    time.Duration // usually Config.Interval; shorter at the end
	Elapsed   time.Duration // measured time at the end of the interval
	Requests  int64         // attempts recorded in the interval
	Errors    int64
	Histogram *hdrhistogram.Histogram // corrected latencies of the interval (ns)
	Total     *hdrhistogram.Histogram // corrected latencies so far (ns)
}

// Run drives load at cfg.URL until cfg.Warmup+cfg.Duration has passed or
// ctx is cancelled, and returns what was measured after the warm-up. A
// cancelled context is not an error: the Result covers the time measured so
// far and has Interrupted set. Requests in flight at the end are awaited
// (at most cfg.Timeout) and recorded.
func Run(ctx context.Context, cfg Config, hooks Hooks) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: invalid config: %w", err)
	}
	r := newRunner(&cfg, hooks)
	return r.run(ctx), nil
}

// runner is the state of one Run.
type runner struct {
	cfg    *Config
	hooks  Hooks
	target target
	shards []*shard
	open   bool
	period float64 // open loop: ns between intended sends over all connections

	base         time.Time     // run start; all offsets are since base
	measureStart time.Duration // end of the warm-up
	end          time.Duration // no request is sent after it; 0 = until stopped
	nextSlot     atomic.Int64  // open loop: next unclaimed schedule slot
	stop         atomic.Bool   // set when the context is cancelled
	staleRetries atomic.Int64  // idempotent requests resent after a dead keep-alive connection
}

func newRunner(cfg *Config, hooks Hooks) *runner {
	t, _ := parseTarget(cfg.URL) // validated
	r := &runner{cfg: cfg, hooks: hooks, target: t, open: cfg.Rate > 0}
	if r.open {
		r.period = float64(time.Second) / cfg.Rate
	}
	r.measureStart = cfg.Warmup
	if cfg.Duration > 0 {
		r.end = cfg.Warmup + cfg.Duration
	}
	n := min(cfg.Connections, 2*runtime.GOMAXPROCS(0))
	for range max(n, 1) {
		r.shards = append(r.shards, newShard())
	}
	return r
}

// since is the monotonic time since the run started.
func (r *runner) since() time.Duration { return time.Since(r.base) }

// run starts the workers, collects intervals until they stop and assembles
// the Result.
func (r *runner) run(ctx context.Context) *Result {
	r.base = time.Now()
	var wg sync.WaitGroup
	guards := make([]*connGuard, 0, r.cfg.Connections)
	for i := range r.cfg.Connections {
		w := newWorker(r, i)
		guards = append(guards, &w.guard)
		wg.Go(func() { w.loop(ctx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	go r.watchdog(guards, done)
	stopWatch := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	defer stopWatch()

	c := newCollector(r)
	c.collect(ctx, done)
	res := c.result()
	res.Interrupted = ctx.Err() != nil
	return res
}
