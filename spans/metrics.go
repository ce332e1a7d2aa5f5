package spans

import "github.com/prometheus/client_golang/prometheus"

var (
	descDropped = prometheus.NewDesc("cellgate_spans_dropped_total",
		"Spans dropped because every record was in flight (the collector is slow or unreachable); requests never wait for export.",
		nil, nil)
	descExported = prometheus.NewDesc("cellgate_spans_exported_total",
		"Spans the OTLP/HTTP collector accepted.", nil, nil)
)

var _ prometheus.Collector = (*Exporter)(nil)

// Describe implements prometheus.Collector.
func (x *Exporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDropped
	ch <- descExported
}

// Collect implements prometheus.Collector.
func (x *Exporter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(x.Dropped()))
	ch <- prometheus.MustNewConstMetric(descExported, prometheus.CounterValue, float64(x.Exported()))
}
