package cellgate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/history"
)

// RolloutHistory is a rollout's traffic history as the journal keeps it
// (GET /v1/history?rollout=ID): every cell of its plan from its start —
// for a flag rollout, every variant's cohort of the flag — downsampled so
// a rollout of any length stays within maxRolloutPoints points per series.
type RolloutHistory struct {
	Rollout string `json:"rollout"`
	Node    string `json:"node"` // whose traffic: each node keeps its own view
	// Step is the seconds each point covers (history.Downsample).
	Step  int64                      `json:"step_s"`
	From  int64                      `json:"from"`
	To    int64                      `json:"to"`
	Cells map[string][]history.Point `json:"cells"`
	// Cohorts are a flag rollout's variant cohorts (its plan's targets and
	// baseline are "flag=variant" names), as in HistoryDoc; absent for a
	// rollout of cells.
	Cohorts map[string]CohortSeries `json:"cohorts,omitempty"`
}

// maxRolloutPoints bounds a rollout's stored points per cell: ~30 KB of
// JSON per cell, whatever the rollout's length.
const maxRolloutPoints = 360

// historySteps are the bucket widths a stored history may use; each
// divides the next, so a history downsampled again stays aligned.
var historySteps = []int64{1, 5, 10, 30, 60, 300, 600, 1800, 3600}

// stepFor is the narrowest step that fits span seconds in maxRolloutPoints.
func stepFor(span int64) int64 {
	for _, s := range historySteps {
		if span/s < maxRolloutPoints {
			return s
		}
	}
	return historySteps[len(historySteps)-1]
}

// persistHistory writes rollout id's history into the journal: the points
// stored before (older than what the node holds in memory, which a
// restart or the hour's end took away) and the node's points since the
// rollout began, downsampled together.
func (n *Node) persistHistory(id string, now time.Time) error {
	n.hist.journalMu.Lock()
	defer n.hist.journalMu.Unlock()
	v, err := n.Controller().Rollout(id)
	if err != nil {
		return err
	}
	old, err := n.storedHistory(id)
	if err != nil {
		return err
	}
	to := now.Unix()
	if !v.Ended.IsZero() {
		to = v.Ended.Unix()
	}
	h := RolloutHistory{Rollout: id, Node: n.name, From: v.Created.Unix(), To: to, Cells: map[string][]history.Point{}}
	h.Step = stepFor(h.To - h.From)
	fs := n.flags.Load()
	for _, name := range slices.Concat(v.Plan.Targets, v.Plan.Baseline) {
		live := n.hist.store.Range(name, h.From, h.To+1)
		stored := old.Cells[name]
		if c, ok := old.Cohorts[name]; ok {
			stored = c.Points
		}
		var pts []history.Point
		for _, p := range stored {
			if len(live) == 0 || p.T+old.Step <= live[0].T {
				pts = append(pts, p) // only what memory no longer holds
			}
		}
		pts = history.Downsample(append(pts, live...), h.Step)
		if c, ok := cohortSeries(name, pts, fs); ok {
			if h.Cohorts == nil {
				h.Cohorts = map[string]CohortSeries{}
			}
			h.Cohorts[name] = c
		} else {
			h.Cells[name] = pts
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("rollout %s history: %w", id, err)
	}
	return n.Controller().PutHistory(id, b)
}

// storedHistory reads the journal's copy of a rollout's history (empty
// when none was stored).
func (n *Node) storedHistory(id string) (RolloutHistory, error) {
	var h RolloutHistory
	b, err := n.Controller().History(id)
	if err != nil || b == nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("rollout %s history: %w", id, err)
	}
	return h, nil
}

// RolloutHistory returns a rollout's history: the journal's copy, brought
// up to date with the node's memory first while the rollout runs (or when
// nothing was journalled yet).
func (n *Node) RolloutHistory(id string) (RolloutHistory, error) {
	if _, err := n.Controller().Rollout(id); err != nil {
		return RolloutHistory{}, err
	}
	h, err := n.storedHistory(id)
	if err != nil {
		return h, err
	}
	if h.Rollout == "" || slices.Contains(n.Controller().Active(), id) {
		if err := n.persistHistory(id, n.now()); err != nil {
			return RolloutHistory{}, err
		}
		return n.storedHistory(id)
	}
	return h, nil
}

// historyAnswer answers GET /v1/history.
func (n *Node) historyAnswer(_ context.Context, q admin.HistoryQuery) (any, error) {
	if q.Rollout != "" {
		return n.RolloutHistory(q.Rollout)
	}
	return n.History(q.Since)
}
