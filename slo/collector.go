package slo

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// promBuckets are the fixed histogram buckets (seconds) of the exported
// duration and TTFB histograms: 1 ms to 60 s, roughly 1-2.5-5 per decade,
// the range the HDR histograms cover.
var promBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// collector exports the registry on scrape. Everything is read from the
// recorders' own data (lifetime status counters, the histogram ring and the
// lifetime histograms it drains into, the count ring): nothing is recorded
// twice for the sake of Prometheus.
type collector struct {
	r                        *Registry
	requests, duration, ttfb *prometheus.Desc
	burn                     *prometheus.Desc
}

// Collector returns a prometheus.Collector exporting, per cell:
//
//   - cellgate_requests_total{cell,code}: requests by status code;
//   - cellgate_request_duration_seconds{cell} and cellgate_ttfb_seconds{cell}:
//     histograms (fixed buckets, 1 ms–60 s) built on scrape from the HDR data;
//     the sum is estimated from bucket midpoints (±0.05 %);
//   - cellgate_slo_burn_rate{cell,slo,window}: slo is availability, latency
//     (and ttfb when configured); window is fast_long, fast_short,
//     slow_long or slow_short (the lengths are in the config).
func (r *Registry) Collector() prometheus.Collector {
	return &collector{
		r:        r,
		requests: prometheus.NewDesc("cellgate_requests_total", "Requests by cell and status code the client got.", []string{"cell", "code"}, nil),
		duration: prometheus.NewDesc("cellgate_request_duration_seconds", "Full request duration by cell.", []string{"cell"}, nil),
		ttfb:     prometheus.NewDesc("cellgate_ttfb_seconds", "Time until the upstream's response headers arrived, by cell.", []string{"cell"}, nil),
		burn:     prometheus.NewDesc("cellgate_slo_burn_rate", "SLO burn rate (bad ratio / error budget) by cell, SLO and rule window.", []string{"cell", "slo", "window"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
	ch <- c.ttfb
	ch <- c.burn
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.now()
	for _, name := range c.r.Cells() {
		cell := c.r.lookup(name)
		cell.eachCode(func(code int, n uint64) {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), name, strconv.Itoa(code))
		})
		total, ttfb := cell.hists.lifetime(c.r.chunks)
		ch <- constHistogram(c.duration, &total, name)
		ch <- constHistogram(c.ttfb, &ttfb, name)
		total.release()
		ttfb.release()
		for _, b := range c.r.burns([]string{name}, now).rates {
			ch <- prometheus.MustNewConstMetric(c.burn, prometheus.GaugeValue, b.Rate, name, b.SLO, b.Window)
		}
	}
}

// constHistogram converts an HDR dist (µs) to a Prometheus histogram in
// seconds with promBuckets. A bucket of the HDR layout is counted under the
// first Prometheus bound at or above its lowest value (their widths are
// 0.1 % of the value, so the error at a bound is at most that).
func constHistogram(desc *prometheus.Desc, d *dist, cell string) prometheus.Metric {
	cum := make(map[float64]uint64, len(promBuckets))
	counts := make([]uint64, len(promBuckets))
	var sum float64
	bi := 0 // indexes ascend, so the bucket only moves forward
	d.each(func(i int, n int64) {
		lo := histLowestValue(i)
		sum += float64(n) * (float64(lo) + float64(histWidth(i)-1)/2) / 1e6
		sec := float64(lo) / 1e6
		for bi < len(promBuckets)-1 && sec > promBuckets[bi] {
			bi++
		}
		if sec <= promBuckets[bi] {
			counts[bi] += uint64(n)
		}
	})
	var run uint64
	for bi, ub := range promBuckets {
		run += counts[bi]
		cum[ub] = run
	}
	return prometheus.MustNewConstHistogram(desc, uint64(d.n), sum, cum, cell)
}
