//go:build linux

package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// timesRecorder keeps the (total, ttfb) of each recorded request.
type timesRecorder struct{ got chan [2]time.Duration }

func (r *timesRecorder) Record(_ int, _ bool, total, ttfb time.Duration) {
	r.got <- [2]time.Duration{total, ttfb}
}

// endedTimes is a timesRecorder that takes the request's end too, and
// keeps it in ends.
type endedTimes struct {
	timesRecorder
	ends chan time.Time
}

func (r *endedTimes) RecordEnded(end time.Time, _ int, _ bool, total, ttfb time.Duration) {
	r.ends <- end
	r.got <- [2]time.Duration{total, ttfb}
}

// TestLoopRecordsTimes: the loop core times a request with its batch clock
// (loopclock.go) and the times still mean what CellRecorder says — ttfb
// from the request's start to the response head, total to the last byte —
// for an upstream that waits before its head and again before its body.
// Only lower bounds, which the waits guarantee whatever the machine's load,
// are asserted. A recorder
// that takes the request's end (EndedRecorder) gets it, within the
// request as the client saw it.
func TestLoopRecordsTimes(t *testing.T) {
	t.Run("Record", func(t *testing.T) { testLoopRecordsTimes(t, false) })
	t.Run("RecordEnded", func(t *testing.T) { testLoopRecordsTimes(t, true) })
}

func testLoopRecordsTimes(t *testing.T, ended bool) {
	const headWait, bodyWait = 30 * time.Millisecond, 20 * time.Millisecond
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(headWait)
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(bodyWait)
		_, _ = io.WriteString(w, "ok")
	}))
	rec := &endedTimes{timesRecorder{got: make(chan [2]time.Duration, 4)}, make(chan time.Time, 4)}
	hooks := Hooks{Recorder: func(string) CellRecorder { return &rec.timesRecorder }}
	if ended {
		hooks.Recorder = func(string) CellRecorder { return rec }
	}
	p, addr := startProxy(t, loopOptions(), []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, hooks)
	c := httpClient(t)
	for i := 0; i < 2; i++ { // the second on the pooled upstream connection
		sent := time.Now()
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("response %d %q", resp.StatusCode, body)
		}
		var got [2]time.Duration
		select {
		case got = <-rec.got:
		case <-time.After(30 * time.Second):
			t.Fatal("request not recorded")
		}
		total, ttfb := got[0], got[1]
		t.Logf("request %d: total %v, ttfb %v", i, total, ttfb)
		if ended {
			select {
			case end := <-rec.ends:
				if end.Before(sent.Add(headWait+bodyWait)) || end.After(time.Now()) {
					t.Fatalf("request %d sent at %v recorded as ended at %v, answered by %v", i, sent, end, time.Now())
				}
			default:
				t.Fatalf("request %d recorded without its end", i)
			}
		}
		// Not total ≥ ttfb + bodyWait: a loop that gets the CPU late
		// (a loaded machine) reads the head and the body in one batch.
		if ttfb < headWait || total < headWait+bodyWait || total < ttfb {
			t.Fatalf("request %d: total %v, ttfb %v; want ttfb ≥ %v, total ≥ %v and total ≥ ttfb", i, total, ttfb, headWait, headWait+bodyWait)
		}
	}
	if s := p.LoopStats(); s.Served != 2 {
		t.Fatalf("loop stats %+v, want 2 served", s)
	}
}
