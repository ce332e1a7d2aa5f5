package flags

import (
	"testing"
	"time"

	"github.com/cellgate/cellgate/slo"
)

// plainRec counts Record calls.
type plainRec struct{ n int }

func (r *plainRec) Record(int, bool, time.Duration, time.Duration) { r.n++ }

// endRec is an EndRecorder: it keeps the end times it was given and fails
// the test if Set.Record reads the clock through Record instead.
type endRec struct {
	t    *testing.T
	ends []time.Time
}

func (r *endRec) Record(int, bool, time.Duration, time.Duration) {
	r.t.Error("Record called on an EndRecorder")
}

func (r *endRec) RecordEnded(end time.Time, _ int, _ bool, _, _ time.Duration) {
	r.ends = append(r.ends, end)
}

// TestRecordPassesEnd: Set.Record hands an EndRecorder the request's end
// time (one clock reading for every cohort) and still records through
// Record for a recorder without RecordEnded; only the assigned variants
// record.
func TestRecordPassesEnd(t *testing.T) {
	recs := map[string]Recorder{}
	ends := map[string]*endRec{}
	s, err := NewSet(testSeed, []Def{def("a", 1, 0), def("b", 0, 1)}, func(name string) Recorder {
		if name[0] == 'a' {
			r := &endRec{t: t}
			ends[name] = r
			recs[name] = r
			return r
		}
		r := &plainRec{}
		recs[name] = r
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	var c Choices
	s.Assign(keyHashes(1)[0], 0, false, &c)
	end := time.Unix(1700000000, 42)
	s.Record(&c, 0, end, 200, false, time.Millisecond, 0)
	if got := ends[CellName("a", "v0")].ends; len(got) != 1 || !got[0].Equal(end) {
		t.Errorf("a=v0 got end times %v, want [%v]", got, end)
	}
	if got := ends[CellName("a", "v1")].ends; len(got) != 0 {
		t.Errorf("a=v1 (weight 0) recorded %v", got)
	}
	if n := recs[CellName("b", "v1")].(*plainRec).n; n != 1 {
		t.Errorf("b=v1 recorded %d times through Record, want 1", n)
	}
	if n := recs[CellName("b", "v0")].(*plainRec).n; n != 0 {
		t.Errorf("b=v0 (weight 0) recorded %d times", n)
	}
}

// BenchmarkRequestPath is what flags add to one proxied request with
// eight flags on the SLO engine's recorders, as a node has them: assign
// (one key hash per request), write the header value, and record the
// request in its eight cohorts at its end time. Latencies vary over a few
// milliseconds so the cohorts' histograms are touched as real traffic
// touches them.
func BenchmarkRequestPath(b *testing.B) {
	reg := slo.NewRegistry(slo.DefaultConfig(), nil)
	s, err := NewSet(testSeed, eightFlags(), func(name string) Recorder { return reg.Cell(name) })
	if err != nil {
		b.Fatal(err)
	}
	keys := keyHashes(1024)
	var c Choices
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Assign(keys[i&1023], 0, false, &c)
		buf = s.AppendHeader(buf[:0], &c)
		end := time.Now()
		d := time.Duration(1000+i*7919%4000) * time.Microsecond
		s.Record(&c, 0, end, 200, false, d, d/2)
	}
}
