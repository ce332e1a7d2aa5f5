package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// grpcNoStatus is the grpcCounts slot of calls that ended without a
// grpc-status: reset streams and answers that carried none.
const grpcNoStatus = grpcMaxCode + 1

// grpcCounts counts a cell's gRPC calls by the grpc-status the client got,
// so a dashboard shows failing calls that requests_total counts as 200.
type grpcCounts [grpcNoStatus + 1]atomic.Uint64

// count notes one call; a code outside the defined range counts as no
// status (the client cannot read it either).
func (g *grpcCounts) count(code int, ok bool) {
	if !ok || code < 0 || code > grpcMaxCode {
		code = grpcNoStatus
	}
	g[code].Add(1)
}

var descGRPC = prometheus.NewDesc("cellgate_grpc_requests_total",
	"gRPC calls by cell and the grpc-status the client got (\"none\": reset, or no status).",
	[]string{"cell", "grpc_status"}, nil)

// grpcStatusLabels are the label values of the grpcCounts slots.
var grpcStatusLabels = func() []string {
	l := make([]string, grpcNoStatus+1)
	for i := range grpcMaxCode + 1 {
		l[i] = strconv.Itoa(i)
	}
	l[grpcNoStatus] = "none"
	return l
}()

// collectGRPC sends the non-zero gRPC counters of every current cell.
func (p *Proxy) collectGRPC(ch chan<- prometheus.Metric) {
	for _, c := range p.snap.Load().cells {
		for i := range c.stats.grpc {
			if n := c.stats.grpc[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descGRPC, prometheus.CounterValue, float64(n), c.name, grpcStatusLabels[i])
			}
		}
	}
}

// GRPCCounts returns the cell's gRPC calls by grpc-status label ("0" …
// "16", "none"), for tests and the status page.
func (p *Proxy) GRPCCounts(cell string) map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range p.snap.Load().cells {
		if c.name != cell {
			continue
		}
		for i := range c.stats.grpc {
			if n := c.stats.grpc[i].Load(); n > 0 {
				out[grpcStatusLabels[i]] = n
			}
		}
	}
	return out
}

// isH2Stream reports whether a request came over HTTP/2 (h2serve.go).
func isH2Stream(ctx *fasthttp.RequestCtx) bool {
	switch ctx.Conn().(type) {
	case *h2StreamConn, *h2StreamTLSConn:
		return true
	}
	return false
}

// protocolCounts breaks a cell's requests since the node started down by
// protocol: "h1", "h2" (HTTP/2, not gRPC) and "grpc" (calls of any
// outcome).
func (c *cell) protocolCounts() map[string]uint64 {
	var grpc uint64
	for i := range c.stats.grpc {
		grpc += c.stats.grpc[i].Load()
	}
	h2 := c.stats.h2.Load()
	h1 := c.served.Load()
	if h1 >= h2+grpc {
		h1 -= h2 + grpc
	} else {
		h1 = 0 // counted at different moments; never negative
	}
	return map[string]uint64{"h1": h1, "h2": h2, "grpc": grpc}
}
