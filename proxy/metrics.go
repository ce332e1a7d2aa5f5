package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descEndpointUp = prometheus.NewDesc("cellgate_upstream_endpoint_up",
		"Whether the endpoint is in rotation (1) or out: ejected by passive health or failing its active check (0).",
		[]string{"cell", "endpoint"}, nil)
	descCellWeight = prometheus.NewDesc("cellgate_cell_weight",
		"The cell's current routing weight.",
		[]string{"cell"}, nil)
	descCellShare = prometheus.NewDesc("cellgate_cell_share",
		"Share of requests the cell actually served over the last minute; differs from its weight while session pins hold.",
		[]string{"cell"}, nil)
	descCellPins = prometheus.NewDesc("cellgate_cell_pinned_sessions",
		"Sessions this node holds pinned to the cell.",
		[]string{"cell"}, nil)
	descAcceptErrors = prometheus.NewDesc("cellgate_accept_errors_total",
		"Temporary accept errors (descriptor exhaustion and the like) retried after a pause.",
		nil, nil)
	descMaxConns = prometheus.NewDesc("cellgate_max_conns",
		"The client connection cap in force: listen.max_conns, lowered to what the descriptor limit allows.",
		nil, nil)
	descCellUp = prometheus.NewDesc("cellgate_cell_up",
		"1 while the cell has an endpoint in rotation on this node; 0 while it is down and its users fail over.",
		[]string{"cell"}, nil)
	descFailovers = prometheus.NewDesc("cellgate_failover_requests_total",
		"Requests of the cell's users served by their failover cell because the cell was down.",
		[]string{"cell"}, nil)
	descInflightFailed = prometheus.NewDesc("cellgate_failover_inflight_failed_total",
		"Requests in flight when the cell died, or dropped unanswered by an endpoint, that could not be retried (non-idempotent, already sent).",
		[]string{"cell"}, nil)
	descOverrides = prometheus.NewDesc("cellgate_override_requests_total",
		"Requests steered to a cell or flag variant by a trusted X-Cellgate-Override; no cell's or variant's SLIs count them.",
		nil, nil)
	descLoopServed = prometheus.NewDesc("cellgate_loop_requests_total",
		"Requests the loop core (listen.core = \"loop\") answered itself; 0 on the goroutine core.",
		nil, nil)
	descLoopHanded = prometheus.NewDesc("cellgate_loop_handoffs_total",
		"Client connections the loop core handed to the goroutine core (a request it does not serve: a body, an upgrade, HTTP/1.0, a refusal...).",
		nil, nil)
	descFailoverPanic = prometheus.NewDesc("cellgate_failover_panic_total",
		"Requests kept on their down cell because more than routing.failover_panic of the weight was down.",
		[]string{"cell"}, nil)
)

var _ prometheus.Collector = (*Proxy)(nil)

// Describe implements prometheus.Collector.
func (p *Proxy) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEndpointUp
	ch <- descCellWeight
	ch <- descCellShare
	ch <- descCellPins
	ch <- descAcceptErrors
	ch <- descMaxConns
	p.tunnels.describe(ch)
	ch <- descCellUp
	ch <- descFailovers
	ch <- descInflightFailed
	ch <- descFailoverPanic
	ch <- descGRPC
	ch <- descOverrides
	ch <- descLoopServed
	ch <- descLoopHanded
}

// Collect implements prometheus.Collector from the current snapshot, so
// the series follow reloads without registration changes.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descAcceptErrors, prometheus.CounterValue, float64(p.AcceptErrors()))
	ch <- prometheus.MustNewConstMetric(descOverrides, prometheus.CounterValue, float64(p.Overrides()))
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(p.budget.MaxConns))
	ls := p.LoopStats()
	ch <- prometheus.MustNewConstMetric(descLoopServed, prometheus.CounterValue, float64(ls.Served))
	ch <- prometheus.MustNewConstMetric(descLoopHanded, prometheus.CounterValue, float64(ls.Handed))
	p.tunnels.collect(ch, p.snap.Load().cells)
	p.collectGRPC(ch)
	for _, c := range p.Status() {
		ch <- prometheus.MustNewConstMetric(descCellWeight, prometheus.GaugeValue, c.Weight, c.Name)
		ch <- prometheus.MustNewConstMetric(descCellShare, prometheus.GaugeValue, c.Share, c.Name)
		ch <- prometheus.MustNewConstMetric(descCellPins, prometheus.GaugeValue, float64(c.Pins), c.Name)
		up := 0.0
		if c.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descCellUp, prometheus.GaugeValue, up, c.Name)
		ch <- prometheus.MustNewConstMetric(descFailovers, prometheus.CounterValue, float64(c.Failovers), c.Name)
		ch <- prometheus.MustNewConstMetric(descInflightFailed, prometheus.CounterValue, float64(c.InflightFailed), c.Name)
		ch <- prometheus.MustNewConstMetric(descFailoverPanic, prometheus.CounterValue, float64(c.Panics), c.Name)
		for _, e := range c.Endpoints {
			up := 0.0
			if e.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descEndpointUp, prometheus.GaugeValue, up, c.Name, e.Addr)
		}
	}
}
