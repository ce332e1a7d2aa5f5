package cellgate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/admin/ctl"
	"github.com/cellgate/cellgate/history"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// getHistory reads GET /v1/history?since=… from the node's admin API.
func getHistory(t *testing.T, c *cluster, since time.Time) cellgate.HistoryDoc {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/history?since=%d", c.node.AdminAddr(), since.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc cellgate.HistoryDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/history: %d %v", resp.StatusCode, err)
	}
	return doc
}

// TestHistoryPerSecond: under load, with a canary started at its first
// step and then aborted, /v1/history holds one point a second per cell —
// requests served, shares that add up, the canary's weight while it ran —
// and the start and abort as decisions.
func TestHistoryPerSecond(t *testing.T) {
	c := startCluster(t, fmt.Sprintf(healthyHead, "200ms"), canaryCells()...)
	began := time.Now().Add(-time.Second)
	l := startLoad(t, c.url(), 300, 500)
	defer l.stop()
	id, err := c.node.Controller().Start(canaryPlan(time.Minute), "test") // holds its 1 % step
	if err != nil {
		t.Fatal(err)
	}
	canaryServed := func(doc cellgate.HistoryDoc) bool {
		for _, p := range doc.Cells["canary-1"] {
			if p.Requests > 0 && p.Weight > 0 {
				return true
			}
		}
		return false
	}
	testwait.For(t, 30*time.Second, "a second in which the canary served", func() bool { return canaryServed(getHistory(t, c, began)) })
	if err := c.node.Controller().Abort(id, "test", "history test"); err != nil {
		t.Fatal(err)
	}
	var doc cellgate.HistoryDoc
	testwait.For(t, 30*time.Second, "the abort among the decisions", func() bool {
		doc = getHistory(t, c, began)
		for _, e := range doc.Decisions {
			if e.Rollout == id && e.Action == rollout.ActionAbort {
				return true
			}
		}
		return false
	})
	if doc.View != "node" || doc.Percentiles == "" {
		t.Errorf("view %q, percentiles %q: want the node's own view, said so", doc.View, doc.Percentiles)
	}
	var started bool
	for _, e := range doc.Decisions {
		started = started || (e.Rollout == id && e.Action == rollout.ActionStart)
	}
	if !started {
		t.Errorf("decisions %v lack the start of %s", doc.Decisions, id)
	}
	// Each second's shares add up to 1 when anything was served; seconds
	// are distinct and increasing per cell.
	sums := map[int64]float64{}
	for cell, pts := range doc.Cells {
		for i, p := range pts {
			if i > 0 && p.T <= pts[i-1].T {
				t.Fatalf("%s: second %d after %d", cell, p.T, pts[i-1].T)
			}
			sums[p.T] += p.Share
			if p.Requests > 0 && (p.P99 <= 0 || p.P50 > p.P99) {
				t.Errorf("%s at %d: p50 %v, p99 %v with %d requests", cell, p.T, p.P50, p.P99, p.Requests)
			}
		}
	}
	for sec, sum := range sums {
		if sum != 0 && (sum < 0.999 || sum > 1.001) {
			t.Errorf("second %d: shares add up to %v", sec, sum)
		}
	}
	if len(doc.Cells["stable-a"]) < 2 {
		t.Errorf("stable-a has %d points", len(doc.Cells["stable-a"]))
	}
}

// getRolloutHistory reads GET /v1/history?rollout=ID.
func getRolloutHistory(t *testing.T, c *cluster, id string) cellgate.RolloutHistory {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/history?rollout=%s", c.node.AdminAddr(), id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h cellgate.RolloutHistory
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/history?rollout=%s: %d %v", id, resp.StatusCode, err)
	}
	return h
}

// servedBefore reports whether pts have a point before t with requests.
func servedBefore(pts []history.Point, t int64) bool {
	for _, p := range pts {
		if p.T < t && p.Requests > 0 {
			return true
		}
	}
	return false
}

// servedAfter reports whether pts have a point after t with requests.
func servedAfter(pts []history.Point, t int64) bool {
	for _, p := range pts {
		if p.T > t && p.Requests > 0 {
			return true
		}
	}
	return false
}

// writeReport writes rollout id's report with `ctl report -o FILE` into
// dir and returns its path.
func writeReport(t *testing.T, c *cluster, id, dir, file string) string {
	t.Helper()
	path := filepath.Join(dir, file)
	var out, errOut bytes.Buffer
	if code := ctl.Main([]string{"-admin", "http://" + c.node.AdminAddr(), "report", id, "-o", path}, &out, &errOut); code != 0 {
		t.Fatalf("ctl report -o %s: exit %d: %s%s", file, code, out.String(), errOut.String())
	}
	return path
}

// reportDoc is what a test reads of ctl report's JSON.
type reportDoc struct {
	Rollout rollout.RolloutView     `json:"rollout"`
	History cellgate.RolloutHistory `json:"history"`
}

// readReport writes rollout id's report as JSON with ctl and parses it.
func readReport(t *testing.T, c *cluster, id string) reportDoc {
	t.Helper()
	raw, err := os.ReadFile(writeReport(t, c, id, t.TempDir(), "report.json"))
	var rep reportDoc
	if err == nil {
		err = json.Unmarshal(raw, &rep)
	}
	if err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return rep
}

// TestRolloutHistoryOutlivesRestart: a running rollout's history is
// journalled; after the node restarts (its in-memory hour gone) the
// rollout's history — and its report — still holds the seconds before
// the restart, and the seconds after are added to it. For a canary that
// is its cells' series; for a flag rollout its variants' cohorts.
func TestRolloutHistoryOutlivesRestart(t *testing.T) {
	waitBound(t)
	for _, tc := range []struct {
		name  string
		head  string
		cells []cellDef
		plan  rollout.Plan
		// series is the released cell's or variant's points.
		series func(h cellgate.RolloutHistory) []history.Point
	}{
		{"canary", fmt.Sprintf(healthyHead, "200ms"), canaryCells(), canaryPlan(time.Minute), // holds its 1 % step
			func(h cellgate.RolloutHistory) []history.Point { return h.Cells["canary-1"] }},
		{"flag", strings.Replace(flagHead("200ms", "all"), `latency_threshold = "300ms"`, `latency_threshold = "10s"`, 1),
			flagCells(), flagPlan(time.Minute, 50, 100), // holds its 50 % step
			func(h cellgate.RolloutHistory) []history.Point {
				if c := h.Cohorts["new-ranker=on"]; c.Kind == cellgate.CohortKindFlag && c.Flag == "new-ranker" && c.Variant == "on" {
					return c.Points
				}
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, tc.head, tc.cells...)
			l := startLoad(t, c.url(), 300, 500)
			id, err := c.node.Controller().Start(tc.plan, "test")
			if err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 30*time.Second, "a second in which the released cell or variant served", func() bool {
				return servedBefore(tc.series(getRolloutHistory(t, c, id)), time.Now().Unix()+1)
			})
			l.stop()
			stopped := time.Now().Unix()
			cfg := c.cfg
			c.stop() // journals the running rollout's history
			c.start(cfg)
			h := getRolloutHistory(t, c, id)
			if !servedBefore(tc.series(h), stopped+1) || h.Step < 1 || h.Node == "" {
				t.Fatalf("after a restart the rollout's history lost its seconds before %d: %+v", stopped, h)
			}
			if rep := readReport(t, c, id); !servedBefore(tc.series(rep.History), stopped+1) || rep.Rollout.ID != id {
				t.Fatalf("after a restart the report of %s lacks the seconds before %d: %+v", id, stopped, rep.History)
			}
			l2 := startLoad(t, c.url(), 300, 500)
			defer l2.stop()
			testwait.For(t, 30*time.Second, "seconds after the restart added", func() bool {
				h = getRolloutHistory(t, c, id)
				return servedAfter(tc.series(h), stopped) && servedBefore(tc.series(h), stopped+1)
			})
		})
	}
}

// cohortHead is flagHead with new-ranker split 30/70 between on and off
// and a latency threshold that a loaded CI machine cannot trip.
func cohortHead(tick string) string {
	head := strings.Replace(flagHead(tick, "all"), `variants = { on = 0, off = 100 }`, `variants = { on = 30, off = 70 }`, 1)
	return strings.Replace(head, `latency_threshold = "300ms"`, `latency_threshold = "10s"`, 1)
}

// sumPoints adds up the requests and errors of points.
func sumPoints(pts []history.Point) (requests, errors uint64) {
	for _, p := range pts {
		requests, errors = requests+p.Requests, errors+p.Errors
	}
	return requests, errors
}

// TestHistoryFlagCohorts: with new-ranker split 30/70 and every upstream
// failing half the requests that carry new-ranker=on, /v1/history holds
// each variant's cohort as its own series beside the cells — marked as a
// flag cohort, the "on" cohort holding every error and the "off" cohort
// none, each second's served shares adding up within the flag, the
// weights' shares 0.3 and 0.7 — and the cohorts' requests add up to the
// cells' (each request is in one variant's cohort and one cell).
func TestHistoryFlagCohorts(t *testing.T) {
	waitBound(t)
	c := startCluster(t, cohortHead("200ms"), flagCells()...)
	setFlagFault(c, democell.FlagFault{Flag: "new-ranker", Variant: "on", Ratio: 0.5})
	began := time.Now().Add(-time.Second)
	const on, off = "new-ranker=on", "new-ranker=off"
	// Every series' first sample (its baseline) is taken before any load,
	// so the cells' and the cohorts' sums cover the same requests.
	testwait.For(t, 30*time.Second, "a first sample of every cell and cohort", func() bool {
		doc := getHistory(t, c, began)
		return len(doc.Cells["stable-a"]) > 0 && len(doc.Cells["stable-b"]) > 0 &&
			len(doc.Cohorts[on].Points) > 0 && len(doc.Cohorts[off].Points) > 0
	})
	l := startLoad(t, c.url(), 300, 500)
	testwait.For(t, 60*time.Second, "200 requests in each cohort", func() bool {
		doc := getHistory(t, c, began)
		a, _ := sumPoints(doc.Cohorts[on].Points)
		b, _ := sumPoints(doc.Cohorts[off].Points)
		return a >= 200 && b >= 200
	})
	l.stop()
	var doc cellgate.HistoryDoc
	var cellReqs, cellErrs uint64
	testwait.For(t, 30*time.Second, "the cohorts' requests adding up to the cells' once the load stopped", func() bool {
		doc = getHistory(t, c, began)
		cellReqs, cellErrs = 0, 0
		for _, pts := range doc.Cells {
			r, e := sumPoints(pts)
			cellReqs, cellErrs = cellReqs+r, cellErrs+e
		}
		a, _ := sumPoints(doc.Cohorts[on].Points)
		b, _ := sumPoints(doc.Cohorts[off].Points)
		return a+b == cellReqs
	})
	for name := range doc.Cells {
		if strings.Contains(name, "=") {
			t.Errorf("cohort %s among the cells", name)
		}
	}
	for name, want := range map[string]cellgate.CohortSeries{
		on:  {Kind: cellgate.CohortKindFlag, Flag: "new-ranker", Variant: "on"},
		off: {Kind: cellgate.CohortKindFlag, Flag: "new-ranker", Variant: "off", Control: true},
	} {
		got := doc.Cohorts[name]
		if got.Kind != want.Kind || got.Flag != want.Flag || got.Variant != want.Variant || got.Control != want.Control {
			t.Errorf("cohort %s: kind %q flag %q variant %q control %v, want %+v", name, got.Kind, got.Flag, got.Variant, got.Control, want)
		}
	}
	onReqs, onErrs := sumPoints(doc.Cohorts[on].Points)
	offReqs, offErrs := sumPoints(doc.Cohorts[off].Points)
	t.Logf("cells %d requests, %d errors; on %d/%d, off %d/%d", cellReqs, cellErrs, onReqs, onErrs, offReqs, offErrs)
	if offErrs != 0 || onErrs != cellErrs {
		t.Errorf("errors: on %d, off %d, cells %d; want all of the cells' on the on cohort", onErrs, offErrs, cellErrs)
	}
	if r := float64(onErrs) / float64(onReqs); r < 0.3 || r > 0.7 {
		t.Errorf("on cohort's error ratio %.3f over %d requests, want about 0.5", r, onReqs)
	}
	shares := map[int64]float64{}
	for name, weightShare := range map[string]float64{on: 0.3, off: 0.7} {
		for _, p := range doc.Cohorts[name].Points {
			shares[p.T] += p.Share
			if math.Abs(p.WeightShare-weightShare) > 1e-9 {
				t.Errorf("%s at %d: weight share %v, want %v", name, p.T, p.WeightShare, weightShare)
			}
			if p.Requests > 0 && math.Abs(p.ErrorRatio-float64(p.Errors)/float64(p.Requests)) > 1e-9 {
				t.Errorf("%s at %d: error ratio %v with %d of %d", name, p.T, p.ErrorRatio, p.Errors, p.Requests)
			}
		}
	}
	for sec, sum := range shares {
		if sum != 0 && math.Abs(sum-1) > 1e-3 {
			t.Errorf("second %d: the cohorts' shares add up to %v", sec, sum)
		}
	}
}
