package slo

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// promBuckets are the fixed histogram buckets (seconds) of the exported
// duration and TTFB histograms: 1 ms to 60 s, roughly 1-2.5-5 per decade,
// the range the HDR histograms cover.
var promBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

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
//   - cellgate_requests_total{cell,code,protocol}: requests by status code
//     and protocol (h1, h2, grpc; protocol.go);
//   - cellgate_request_duration_seconds{cell,protocol} and
//     cellgate_ttfb_seconds{cell}: histograms (fixed buckets, 1 ms–60 s) built on scrape from the HDR data;
//     the sum is estimated from bucket midpoints (±0.05 %);
//   - cellgate_slo_burn_rate{cell,slo,window}: slo is availability, latency
//     (and ttfb when configured); window is fast_long, fast_short,
//     slow_long or slow_short (the lengths are in the config).
func (r *Registry) Collector() prometheus.Collector {
	return &collector{
		r:        r,
		requests: prometheus.NewDesc("cellgate_requests_total", "Requests by cell, status code the client got and protocol.", []string{"cell", "code", "protocol"}, nil),
		duration: prometheus.NewDesc("cellgate_request_duration_seconds", "Full request duration by cell and protocol.", []string{"cell", "protocol"}, nil),
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
		cell.eachProtocolCode(func(protocol string, code int, n uint64) {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), name, strconv.Itoa(code), protocol)
		})
		// The other protocols first: whatever they hold is already in the
		// cell's histograms (recordNs), so HTTP/1.1 = total − others ≥ 0.
		var others [len(otherProtocols)]promHist
		for i := range cell.protos {
			others[i] = cell.protos[i].load()
		}
		total, ttfb := cell.hists.lifetime(c.r.chunks)
		h1 := toPromHist(&total)
		for i := range others {
			if others[i].n > 0 {
				ch <- others[i].metric(c.duration, name, otherProtocols[i])
				h1.sub(&others[i])
			}
		}
		ch <- h1.metric(c.duration, name, ProtocolH1)
		ch <- constHistogram(c.ttfb, &ttfb, name)
		total.release()
		ttfb.release()
		for _, b := range c.r.burns([]string{name}, now).rates {
			ch <- prometheus.MustNewConstMetric(c.burn, prometheus.GaugeValue, b.Rate, name, b.SLO, b.Window)
		}
	}
}

// constHistogram converts an HDR dist (µs) to a Prometheus histogram in
// seconds with promBuckets.
func constHistogram(desc *prometheus.Desc, d *dist, labels ...string) prometheus.Metric {
	h := toPromHist(d)
	return h.metric(desc, labels...)
}

// toPromHist bins an HDR dist (µs) into promBuckets. A bucket of the HDR
// layout is counted under the first Prometheus bound at or above its
// lowest value (their widths are 0.1 % of the value, so the error at a
// bound is at most that); the sum is estimated from bucket midpoints.
func toPromHist(d *dist) promHist {
	var h promHist
	d.each(func(i int, n int64) {
		h.buckets[promBucketOf(i)] += uint64(n)
		h.sumHalfUs += uint64(n) * uint64(2*histLowestValue(i)+histWidth(i)-1)
	})
	h.n = uint64(d.n)
	return h
}

// metric returns h as a constant Prometheus histogram in seconds.
func (h *promHist) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	cum := make(map[float64]uint64, len(promBuckets))
	var run uint64
	for bi, ub := range promBuckets {
		run += h.buckets[bi]
		cum[ub] = run
	}
	return prometheus.MustNewConstHistogram(desc, h.n, float64(h.sumHalfUs)/2e6, cum, labels...)
}
