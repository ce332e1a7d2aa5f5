package slo

import (
	"sync/atomic"
	"time"
)

// Protocol labels of cellgate_requests_total and
// cellgate_request_duration_seconds. HTTP/1.1 ("h1") is what a cell
// recorded less the other protocols, so an HTTP/1.1 request (the hot path,
// Record) costs nothing more than before; HTTP/2 and gRPC requests
// (RecordProtocol) also count in their own small lifetime series. The SLO
// engine judges a cell on all its requests whatever the protocol: the
// label is for metrics only.
const (
	ProtocolH1   = "h1"
	ProtocolH2   = "h2"
	ProtocolGRPC = "grpc"
)

// otherProtocols are the protocols counted apart, in Cell.protos order.
var otherProtocols = [...]string{ProtocolH2, ProtocolGRPC}

// protoStats is one non-HTTP/1.1 protocol's lifetime counts in a cell:
// requests by status code and the duration histogram in the exported
// buckets, binned exactly as constHistogram bins the HDR data so that the
// HTTP/1.1 series is the cell's total less these.
type protoStats struct {
	codes   codeCounts
	buckets [len(promBuckets) + 1]atomic.Uint64 // the last: above the highest bound
	n       atomic.Uint64
	// sumHalfUs is twice the sum of the bucket midpoints in µs, the
	// estimate constHistogram uses for the sum, kept as an integer.
	sumHalfUs atomic.Uint64
}

// protocolIndex returns the Cell.protos index of a protocol, or -1 for
// HTTP/1.1 and any unknown name (counted as HTTP/1.1).
func protocolIndex(protocol string) int {
	for i, p := range otherProtocols {
		if p == protocol {
			return i
		}
	}
	return -1
}

// RecordProtocol is Record for a request of the given protocol
// (ProtocolH1, ProtocolH2 or ProtocolGRPC): the engine counts it like any
// other; the metrics carry its protocol label.
func (c *Cell) RecordProtocol(protocol string, status int, proxyErr bool, total, ttfb time.Duration) {
	var ps *protoStats
	if i := protocolIndex(protocol); i >= 0 {
		ps = &c.protos[i]
	}
	c.recordNs(c.reg.nowNs(), ps, status, proxyErr, total, ttfb)
}

// observe adds one request's duration (an HDR index) to the histogram.
func (ps *protoStats) observe(hi int) {
	ps.buckets[promBucketOf(hi)].Add(1)
	ps.n.Add(1)
	ps.sumHalfUs.Add(uint64(2*histLowestValue(hi) + histWidth(hi) - 1))
}

// promHist is a histogram in the exported buckets, not cumulative.
type promHist struct {
	buckets      [len(promBuckets) + 1]uint64
	n, sumHalfUs uint64
}

// load reads the protocol's histogram.
func (ps *protoStats) load() promHist {
	var h promHist
	for i := range ps.buckets {
		h.buckets[i] = ps.buckets[i].Load()
	}
	h.n, h.sumHalfUs = ps.n.Load(), ps.sumHalfUs.Load()
	return h
}

// sub takes o out of h, never below zero (o is read before h, so it is
// contained in it unless a record was too old for the ring).
func (h *promHist) sub(o *promHist) {
	clampSub := func(a *uint64, b uint64) {
		if *a >= b {
			*a -= b
		} else {
			*a = 0
		}
	}
	for i := range h.buckets {
		clampSub(&h.buckets[i], o.buckets[i])
	}
	clampSub(&h.n, o.n)
	clampSub(&h.sumHalfUs, o.sumHalfUs)
}

// promBucketOf returns the exported bucket an HDR index falls in: the
// first bound at or above its lowest value, len(promBuckets) above all.
func promBucketOf(i int) int {
	sec := float64(histLowestValue(i)) / 1e6
	for b, ub := range promBuckets {
		if sec <= ub {
			return b
		}
	}
	return len(promBuckets)
}

// eachProtocolCode calls f for every protocol and status code seen so far.
func (c *Cell) eachProtocolCode(f func(protocol string, code int, n uint64)) {
	for code := range maxCode {
		if n := c.h1Code(code); n != 0 {
			f(ProtocolH1, code, n)
		}
		for i := range c.protos {
			if n := c.protos[i].codes[code].Load(); n != 0 {
				f(otherProtocols[i], code, n)
			}
		}
	}
}
