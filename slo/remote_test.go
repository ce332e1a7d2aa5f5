package slo

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRemoteDeltaMerge(t *testing.T) {
	clk := &clock{t: simEpoch}
	a := NewRegistry(simConfig(), clk.now)
	b := NewRegistry(simConfig(), clk.now)
	for s := range 20 {
		for range 10 {
			a.Cell("canary").Record(200, false, 10*time.Millisecond, time.Millisecond)
			st := 200
			if s%2 == 0 {
				st = 500
			}
			b.Cell("canary").Record(st, false, 30*time.Millisecond, time.Millisecond)
		}
		clk.advance(time.Second)
	}
	d := b.ExportDelta("node-b", "canary", simEpoch)
	if len(d.Counts) != 20 || len(d.Hists) != 4 {
		t.Fatalf("delta has %d intervals, %d slices; want 20, 4", len(d.Counts), len(d.Hists))
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var wire Delta
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	for range 2 { // merging twice is idempotent
		if err := a.MergeRemote(wire); err != nil {
			t.Fatal(err)
		}
	}
	s := a.Snapshot([]string{"canary"}, time.Minute)
	if s.Requests != 400 || s.AvailabilityBad != 100 {
		t.Fatalf("merged view: %d requests, %d bad; want 400, 100", s.Requests, s.AvailabilityBad)
	}
	if s.LatencySamples != 400 || s.P90 < 29*time.Millisecond {
		t.Fatalf("merged latencies: %d samples, p90 %v", s.LatencySamples, s.P90)
	}
	// The next export starts where this one ended and carries nothing new.
	if next := b.ExportDelta("node-b", "canary", d.Through); len(next.Counts) != 0 {
		t.Fatalf("second export repeats %d intervals", len(next.Counts))
	}
}

func TestMergeRemoteRejects(t *testing.T) {
	reg := NewRegistry(simConfig(), (&clock{t: simEpoch}).now)
	cfg := reg.Config()
	ok := Delta{Node: "n", Cell: "c", Interval: cfg.Interval, Slice: cfg.HistogramSlice}
	tests := []struct {
		name   string
		mutate func(*Delta)
	}{
		{"other interval", func(d *Delta) { d.Interval = 2 * time.Second }},
		{"no node", func(d *Delta) { d.Node = "" }},
		{"mismatched lists", func(d *Delta) { d.Hists = []SliceHist{{TotalIdx: []uint16{1}}} }},
		{"index out of range", func(d *Delta) { d.Hists = []SliceHist{{TotalIdx: []uint16{65000}, TotalN: []uint32{1}}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.mutate(&d)
			if err := reg.MergeRemote(d); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := reg.MergeRemote(ok); err != nil {
		t.Fatalf("valid empty delta rejected: %v", err)
	}
}

// FuzzMergeRemote feeds decoded peer deltas (outside input) to MergeRemote
// and reads the result back: nothing may panic.
func FuzzMergeRemote(f *testing.F) {
	clk := &clock{t: simEpoch.Add(time.Minute)}
	src := NewRegistry(simConfig(), clk.now)
	for range 50 {
		src.Cell("c").Record(200, false, 5*time.Millisecond, time.Millisecond)
	}
	clk.advance(10 * time.Second)
	seed, _ := json.Marshal(src.ExportDelta("n", "c", simEpoch))
	f.Add(seed)
	f.Add([]byte(`{"node":"n","cell":"c","hists":[{"epoch":1,"total_idx":[17407],"total_n":[4294967295]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Delta
		if json.Unmarshal(raw, &d) != nil {
			return
		}
		reg := NewRegistry(simConfig(), clk.now)
		cfg := reg.Config()
		d.Interval, d.Slice = cfg.Interval, cfg.HistogramSlice
		if reg.MergeRemote(d) != nil {
			return
		}
		reg.Snapshot([]string{d.Cell}, time.Minute)
		reg.Judge([]string{d.Cell}, []string{"other"}, time.Time{}, nil)
	})
}
