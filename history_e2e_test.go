package cellgate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
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
	waitFor(t, "a second in which the canary served", 30*time.Second, func() bool { return canaryServed(getHistory(t, c, began)) })
	if err := c.node.Controller().Abort(id, "test", "history test"); err != nil {
		t.Fatal(err)
	}
	var doc cellgate.HistoryDoc
	waitFor(t, "the abort among the decisions", 30*time.Second, func() bool {
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

// canaryServedBefore reports whether the history has a point before t in
// which the canary served requests.
func canaryServedBefore(h cellgate.RolloutHistory, t int64) bool {
	for _, p := range h.Cells["canary-1"] {
		if p.T < t && p.Requests > 0 {
			return true
		}
	}
	return false
}

// TestRolloutHistoryOutlivesRestart: a running rollout's history is
// journalled; after the node restarts (its in-memory hour gone) the
// rollout's history still holds the seconds before the restart, and the
// seconds after are added to it.
func TestRolloutHistoryOutlivesRestart(t *testing.T) {
	c := startCluster(t, fmt.Sprintf(healthyHead, "200ms"), canaryCells()...)
	l := startLoad(t, c.url(), 300, 500)
	id, err := c.node.Controller().Start(canaryPlan(time.Minute), "test") // holds its 1 % step
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second in which the canary served", 30*time.Second, func() bool {
		return canaryServedBefore(getRolloutHistory(t, c, id), time.Now().Unix()+1)
	})
	l.stop()
	stopped := time.Now().Unix()
	cfg := c.cfg
	c.stop() // journals the running rollout's history
	c.start(cfg)
	h := getRolloutHistory(t, c, id)
	if !canaryServedBefore(h, stopped+1) || h.Step < 1 || h.Node == "" {
		t.Fatalf("after a restart the rollout's history lost its seconds before %d: %+v", stopped, h)
	}
	l2 := startLoad(t, c.url(), 300, 500)
	defer l2.stop()
	waitFor(t, "seconds after the restart added", 30*time.Second, func() bool {
		h = getRolloutHistory(t, c, id)
		for _, p := range h.Cells["stable-a"] {
			if p.T > stopped && p.Requests > 0 {
				return canaryServedBefore(h, stopped+1)
			}
		}
		return false
	})
}
