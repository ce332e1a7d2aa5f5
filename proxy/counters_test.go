package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters is the simplest CellRecorder, for the package's tests: a request
// count per cell and status code. The node records through the slo package,
// which also exports cellgate_requests_total.
//
// Recording is one atomic add into a fixed array, so it never blocks or
// allocates; series are formatted only when scraped.
type Counters struct {
	mu    sync.Mutex
	cells map[string]*cellCounters // guarded by mu; entries never removed
}

// cellCounters counts one cell's requests by status code (100–599; other
// codes, which no valid response carries, count as 0).
type cellCounters struct {
	codes [600]atomic.Uint64
}

var _ CellRecorder = (*cellCounters)(nil)

// Record implements CellRecorder.
func (c *cellCounters) Record(status int, _ bool, _, _ time.Duration) {
	if status < 100 || status >= len(c.codes) {
		status = 0
	}
	c.codes[status].Add(1)
}

// NewCounters returns empty counters.
func NewCounters() *Counters { return &Counters{cells: map[string]*cellCounters{}} }

// Recorder returns the cell's recorder; it fits Hooks.Recorder.
func (c *Counters) Recorder(cell string) CellRecorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.cells[cell]
	if cc == nil {
		cc = &cellCounters{}
		c.cells[cell] = cc
	}
	return cc
}

// Count returns how many requests of cell ended with status.
func (c *Counters) Count(cell string, status int) uint64 {
	c.mu.Lock()
	cc := c.cells[cell]
	c.mu.Unlock()
	if cc == nil || status < 0 || status >= len(cc.codes) {
		return 0
	}
	return cc.codes[status].Load()
}

var descRequests = prometheus.NewDesc("cellgate_requests_total",
	"Requests finished, by cell and the status code the client got.",
	[]string{"cell", "code"}, nil)

var _ prometheus.Collector = (*Counters)(nil)

// Describe implements prometheus.Collector.
func (c *Counters) Describe(ch chan<- *prometheus.Desc) { ch <- descRequests }

// Collect implements prometheus.Collector; codes never seen are omitted.
func (c *Counters) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	cells := make(map[string]*cellCounters, len(c.cells))
	for k, v := range c.cells {
		cells[k] = v
	}
	c.mu.Unlock()
	for name, cc := range cells {
		for code := range cc.codes {
			if n := cc.codes[code].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), name, strconv.Itoa(code))
			}
		}
	}
}
