package bench

import (
	"context"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// collector cuts the measured phase into intervals: every tick it takes
// each shard's interval histogram (leaving a spare in its place), merges
// them into the interval and running totals, and reports the interval.
// Merging happens here, off the sending goroutines.
type collector struct {
	r        *runner
	spares   []*hdrhistogram.Histogram
	interval *hdrhistogram.Histogram
	total    *hdrhistogram.Histogram
	reqs     int64
	errs     int64

	startWall time.Time     // wall clock of the current interval's start
	startMono time.Duration // the same, since the run started
	stopped   time.Duration // when collection ended, since the run started
}

func newCollector(r *runner) *collector {
	c := &collector{r: r, interval: newHistogram(), total: newHistogram()}
	for range r.shards {
		c.spares = append(c.spares, newHistogram())
	}
	return c
}

// collect waits out the warm-up, then ticks until the workers are done.
func (c *collector) collect(ctx context.Context, done <-chan struct{}) {
	r := c.r
	if r.measureStart > 0 {
		t := time.NewTimer(r.measureStart - r.since())
		select {
		case <-t.C:
		case <-done:
		}
		t.Stop()
	}
	c.startMono = max(r.since(), r.measureStart)
	c.startWall = r.base.Add(c.startMono)
	if !c.workersRunning(done) {
		c.stopped = c.startMono
		return
	}
	tick := time.NewTicker(r.cfg.interval())
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.tick(r.since())
		case <-done:
			c.stopped = r.since()
			if r.end > 0 && ctx.Err() == nil {
				// The schedule ran to r.end: time spent awaiting in-flight
				// responses after it is not measured time, and an open-loop
				// schedule whose last slot came before r.end still covered
				// the whole duration.
				c.stopped = r.end
			}
			c.tick(max(c.stopped, c.startMono))
			return
		}
	}
}

func (c *collector) workersRunning(done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// tick closes the interval ending at now (since the run started).
func (c *collector) tick(now time.Duration) {
	c.interval.Reset()
	var reqs, errs int64
	for i, s := range c.r.shards {
		h, n, e := s.swapInterval(c.spares[i])
		c.interval.Merge(h)
		h.Reset()
		c.spares[i] = h
		reqs += n
		errs += e
	}
	c.total.Merge(c.interval)
	c.reqs += reqs
	c.errs += errs
	length := max(now-c.startMono, 0)
	if c.r.hooks.OnInterval != nil {
		c.r.hooks.OnInterval(Interval{
			Start:     c.startWall,
			Length:    length,
			Elapsed:   now - c.r.measureStart,
			Requests:  reqs,
			Errors:    errs,
			Histogram: c.interval,
			Total:     c.total,
		})
	}
	c.startMono = now
	c.startWall = c.r.base.Add(now)
}

// result assembles the Result once the workers have stopped.
func (c *collector) result() *Result {
	r := c.r
	res := &Result{
		Target:      r.target.label,
		Mode:        ModeClosed,
		Connections: r.cfg.Connections,
		Keys:        r.cfg.Keys,
		Elapsed:     max(c.stopped-r.measureStart, 0),
		Requests:    c.reqs,
		Errors:      c.errs,
		Histogram:   c.total,

		StaleRetries: r.staleRetries.Load(),
	}
	if r.open {
		res.Mode = ModeOpen
		res.Rate = r.cfg.Rate
	}
	if r.cfg.Keys > 0 {
		res.KeyDist = r.cfg.KeyDist
		if res.KeyDist == "" {
			res.KeyDist = DistUniform
		}
	}
	res.collect(r.shards)
	res.finish(r.open)
	return res
}
