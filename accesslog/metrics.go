package accesslog

import "github.com/prometheus/client_golang/prometheus"

var (
	descDropped = prometheus.NewDesc("cellgate_access_log_dropped_total",
		"Access log lines dropped because every buffer entry was in flight (the writer is slow or its destination blocks); requests are never held for the log.",
		nil, nil)
	descWritten = prometheus.NewDesc("cellgate_access_log_lines_total",
		"Access log lines written to the destination.",
		nil, nil)
)

var _ prometheus.Collector = (*Log)(nil)

// Describe implements prometheus.Collector.
func (l *Log) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDropped
	ch <- descWritten
}

// Collect implements prometheus.Collector.
func (l *Log) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(l.Dropped()))
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(l.Written()))
}
