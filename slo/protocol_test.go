package slo

import (
	"reflect"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestCollectorProtocols: requests recorded as HTTP/1.1, HTTP/2 and gRPC
// are exported under their protocol label, in requests_total by code and
// in the duration histogram (HTTP/1.1 being the cell's total less the
// others, bucket by bucket), while the engine sees the same requests it
// would have without the label.
func TestCollectorProtocols(t *testing.T) {
	clk := &clock{t: simEpoch}
	labelled := NewRegistry(simConfig(), clk.now)
	plain := NewRegistry(simConfig(), clk.now)
	lc, pc := labelled.Cell("c"), plain.Cell("c")
	type rec struct {
		proto  string
		status int
		d      time.Duration
		n      int
	}
	recs := []rec{
		{ProtocolH1, 200, 20 * time.Millisecond, 10},
		{ProtocolH1, 503, 2 * time.Second, 2},
		{ProtocolH2, 200, 300 * time.Millisecond, 4},
		{ProtocolGRPC, 200, 3 * time.Millisecond, 5},
		{ProtocolGRPC, 504, 45 * time.Second, 1},
	}
	for _, r := range recs {
		for range r.n {
			if r.proto == ProtocolH1 {
				lc.Record(r.status, false, r.d, r.d/2)
			} else {
				lc.RecordProtocol(r.proto, r.status, false, r.d, r.d/2)
			}
			pc.Record(r.status, false, r.d, r.d/2)
		}
	}
	clk.advance(time.Minute)

	if got, want := lc.Totals(), pc.Totals(); got != want {
		t.Errorf("totals with protocols %+v, without %+v", got, want)
	}
	if got, want := labelled.burns([]string{"c"}, clk.now()).rates, plain.burns([]string{"c"}, clk.now()).rates; !reflect.DeepEqual(got, want) {
		t.Errorf("burn rates with protocols %+v, without %+v", got, want)
	}

	byName := gather(t, labelled.Collector())
	codes := map[string]float64{}
	for _, m := range byName["cellgate_requests_total"].Metric {
		codes[labelOf(m, "protocol")+"/"+labelOf(m, "code")] = m.GetCounter().GetValue()
	}
	wantCodes := map[string]float64{"h1/200": 10, "h1/503": 2, "h2/200": 4, "grpc/200": 5, "grpc/504": 1}
	if !reflect.DeepEqual(codes, wantCodes) {
		t.Errorf("requests_total by protocol/code %v, want %v", codes, wantCodes)
	}

	// Each protocol's histogram holds exactly its own requests: every
	// request's duration is far from a bound, so its bucket is certain.
	hists := map[string]*dto.Histogram{}
	for _, m := range byName["cellgate_request_duration_seconds"].Metric {
		hists[labelOf(m, "protocol")] = m.GetHistogram()
	}
	if len(hists) != 3 {
		t.Fatalf("duration histograms by protocol: %v", hists)
	}
	for _, proto := range []string{ProtocolH1, ProtocolH2, ProtocolGRPC} {
		h := hists[proto]
		var n uint64
		var sum float64
		for _, r := range recs {
			if r.proto == proto {
				n += uint64(r.n)
				sum += float64(r.n) * r.d.Seconds()
			}
		}
		if h.GetSampleCount() != n || h.GetSampleSum() < sum*0.999 || h.GetSampleSum() > sum*1.001 {
			t.Errorf("%s: count %d sum %v, want %d and %v", proto, h.GetSampleCount(), h.GetSampleSum(), n, sum)
		}
		for _, b := range h.Bucket {
			var want uint64
			for _, r := range recs {
				if r.proto == proto && r.d.Seconds() <= b.GetUpperBound() {
					want += uint64(r.n)
				}
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("%s: bucket le=%v holds %d, want %d", proto, b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
}
