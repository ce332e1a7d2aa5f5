package proxy

import "time"

// Protocol labels of the request metrics (requests_total and
// request_duration_seconds): an HTTP/1.1 request is "h1", an HTTP/2 one
// "h2", a gRPC call (HTTP/2 with a grpc content type) "grpc".
const (
	ProtocolH1   = "h1"
	ProtocolH2   = "h2"
	ProtocolGRPC = "grpc"
)

// ProtocolRecorder is a CellRecorder that also takes the request's
// protocol, for metrics labelled by it. A recorder without it gets every
// request through Record, as HTTP/1.1 ones always do: the HTTP/1.1 path
// calls Record alone and so stays allocation-free.
type ProtocolRecorder interface {
	CellRecorder
	// RecordProtocol is Record for a request of protocol ProtocolH2 or
	// ProtocolGRPC.
	RecordProtocol(protocol string, status int, proxyErr bool, total, ttfb time.Duration)
}

// EndedRecorder is a CellRecorder that also takes the time the request
// ended as finish read it (slo.Cell.RecordEnded), so it need not read the
// clock itself: on the loop core that time is the batch clock's
// (loopclock.go), and a request is recorded without a clock read.
type EndedRecorder interface {
	CellRecorder
	// RecordEnded is Record for a request that ended at end (a time.Now
	// reading, with its monotonic part).
	RecordEnded(end time.Time, status int, proxyErr bool, total, ttfb time.Duration)
}

// record hands a finished request, which ended at end, to the cell's
// recorder with its protocol when the recorder takes one, else with its
// end when it takes that.
func (st *reqState) record(rec CellRecorder, end time.Time, status int, proxyErr bool, total, ttfb time.Duration) {
	if st.metricProto != "" {
		if pr, ok := rec.(ProtocolRecorder); ok {
			pr.RecordProtocol(st.metricProto, status, proxyErr, total, ttfb)
			return
		}
	}
	if er, ok := rec.(EndedRecorder); ok {
		er.RecordEnded(end, status, proxyErr, total, ttfb)
		return
	}
	rec.Record(status, proxyErr, total, ttfb)
}
