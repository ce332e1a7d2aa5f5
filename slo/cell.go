package slo

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// maxCode bounds the per-status counters; codes outside [100, maxCode) are
// counted under code 0.
const maxCode = 600

// Cell is one cell's recorder. It is created by Registry.Cell and lives as
// long as the registry; the proxy keeps the pointer and calls Record.
type Cell struct {
	name string
	reg  *Registry

	counts *countRing
	hists  *histRing
	// fine holds the last fineReach intervals' request and error counts
	// at 1/fineParts of an interval, so the decisive tests can count a
	// baseline's requests since a step without the part of the step's
	// first interval that came before it (sinceStep).
	fine *countRing

	// codes counts every HTTP/1.1 request by the status the client got
	// (lifetime), for cellgate_requests_total{cell,code,protocol="h1"},
	// sharded like the count ring;
	// proxyErrs counts those the proxy failed itself (rare, unsharded).
	codes     [countShards]codeCounts
	proxyErrs atomic.Uint64
	// protos counts HTTP/2 and gRPC requests apart (protocol.go): codes
	// holds only the HTTP/1.1 ones, the histograms hold all.
	protos [len(otherProtocols)]protoStats

	// alarm says whether Record signals the controller (alarm.go):
	// alarmOff, alarmErrorsOnly, or a latency in nanoseconds above which a
	// request alarms too.
	alarm atomic.Int64
}

// Name returns the cell's name.
func (c *Cell) Name() string { return c.name }

// Record records one finished request: status is the code the client got
// (502/503/504 for proxy-generated errors), proxyErr is true when the proxy
// itself failed the request, total the full duration and ttfb the time
// until the upstream's response headers arrived. It is safe for concurrent
// use, does not allocate in steady state and takes a lock only once per
// interval per cell (to recycle a slot). Half its cost is reading the
// clock; a caller that knows the end time (start.Add(total)) saves that
// with RecordAt.
func (c *Cell) Record(status int, proxyErr bool, total, ttfb time.Duration) {
	c.recordNs(c.reg.nowNs(), nil, status, proxyErr, total, ttfb)
}

// codeCounts is one shard of the per-status counters.
type codeCounts [maxCode]atomic.Uint64

// RecordAt is Record with the caller's clock reading, for callers that
// already hold the request's end time (it saves a clock read) and for
// simulations.
func (c *Cell) RecordAt(at time.Time, status int, proxyErr bool, total, ttfb time.Duration) {
	c.recordNs(at.UnixNano(), nil, status, proxyErr, total, ttfb)
}

// RecordEnded is Record for a caller that read time.Now when the request
// ended (end, with its monotonic reading): on the real clock it records at
// end on the same monotonic scale as Record, without reading the clock
// again — a request recorded in its cell and in each flag cohort it is in
// pays one clock read, not one per recorder (most of Record's cost:
// BenchmarkRecord against BenchmarkRecordEnded). With an injected clock
// end is from another clock, so it reads the registry's as Record does.
func (c *Cell) RecordEnded(end time.Time, status int, proxyErr bool, total, ttfb time.Duration) {
	r := c.reg
	ns := r.baseNs + int64(end.Sub(r.base))
	if !r.realClock {
		ns = r.nowNs()
	}
	c.recordNs(ns, nil, status, proxyErr, total, ttfb)
}

// recordNs records one request; ps is its protocol's own counts, nil for
// HTTP/1.1.
func (c *Cell) recordNs(ns int64, ps *protoStats, status int, proxyErr bool, total, ttfb time.Duration) {
	th := c.reg.th.Load()
	sh := shardHint()
	a := uint64(1) << 32
	if proxyErr || status >= 500 {
		a++
	}
	var b uint64
	if total > th.latency {
		b = 1 << 32
	}
	if th.ttfb > 0 && ttfb > th.ttfb {
		b++
	}
	c.counts.add(ns, sh, a, b)
	c.fine.add(ns, sh, a, 0)
	ti := -1
	if !proxyErr {
		ti = histIndex(durUs(ttfb))
	}
	hi := histIndex(durUs(total))
	c.hists.add(ns, hi, ti)
	if uint(status) >= maxCode || status < 100 {
		status = 0
	}
	if ps == nil {
		c.codes[sh%countShards][status].Add(1)
	} else {
		ps.codes[status].Add(1)
		ps.observe(hi) // after hists.add: a scrape reads ps first (collector.go)
	}
	if proxyErr {
		c.proxyErrs.Add(1)
	}
	if w := c.alarm.Load(); w != alarmOff && (a&1 != 0 || (w > 0 && int64(total) > w)) {
		c.reg.signal()
	}
}

// Totals are a cell's lifetime request counts by outcome.
type Totals struct {
	Status2xx  uint64 `json:"2xx"`
	Status3xx  uint64 `json:"3xx"`
	Status4xx  uint64 `json:"4xx"`
	Status5xx  uint64 `json:"5xx"`
	ProxyError uint64 `json:"proxy_error"`
	Other      uint64 `json:"other"`
}

// Totals returns the cell's lifetime counts by outcome. Proxy errors are
// also counted under their status class (5xx).
func (c *Cell) Totals() Totals {
	var t Totals
	for code := range maxCode {
		n := c.code(code)
		switch code / 100 {
		case 2:
			t.Status2xx += n
		case 3:
			t.Status3xx += n
		case 4:
			t.Status4xx += n
		case 5:
			t.Status5xx += n
		default:
			t.Other += n
		}
	}
	t.ProxyError = c.proxyErrs.Load()
	return t
}

// code returns the lifetime count of one status code, all protocols.
func (c *Cell) code(code int) uint64 {
	n := c.h1Code(code)
	for i := range c.protos {
		n += c.protos[i].codes[code].Load()
	}
	return n
}

// h1Code returns the lifetime HTTP/1.1 count of one status code over all
// shards.
func (c *Cell) h1Code(code int) uint64 {
	var n uint64
	for i := range c.codes {
		n += c.codes[i][code].Load()
	}
	return n
}

// shardHint picks a counter shard from the address of the caller's stack:
// stable for a goroutine (a proxy worker keeps its shard, so two workers
// rarely share a cache line) and free, unlike a random draw (~5 ns). The
// address is only hashed, never turned back into a pointer.
//
//go:nosplit
func shardHint() uint32 {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x))) >> 11 // goroutine stacks are ≥ 2 KiB apart
	return uint32((h * 0x9E3779B97F4A7C15) >> 60)
}
