package cellgate

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/history"
	"github.com/cellgate/cellgate/rollout"
)

// historian samples the node's cells into its history store once a
// second (history.Sampler). It reads counters and the SLO engine, never
// the data plane's request path. Started with the data plane, stopped
// before the controller (lifecycle.go).
type historian struct {
	n     *Node
	store *history.Store

	mu     sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan struct{}

	// journalMu orders the read-merge-write of persistHistory between the
	// sampler and admin requests.
	journalMu sync.Mutex
}

func (h *historian) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		h.run(ctx)
	}(h.done)
}

func (h *historian) stop() {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.cancel, h.done = nil, nil
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// journalEvery is how often (in samples, seconds) the running rollouts'
// history is written to the journal; also when one ends and when the
// sampler stops (shutdown, handover), so at most this much is lost to a
// crash.
const journalEvery = 30

// run samples every second until ctx ends, and journals the running
// rollouts' history every journalEvery samples.
func (h *historian) run(ctx context.Context) {
	s := &history.Sampler{Store: h.store}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	running := map[string]bool{}
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			h.journal(running)
			return
		case <-tick.C:
		}
		s.Sample(h.n.now().Unix(), h.n.readCells())
		if i%journalEvery == 0 || h.ended(running) {
			h.journal(running)
		}
	}
}

// ended reports whether a rollout of running is no longer active.
func (h *historian) ended(running map[string]bool) bool {
	active := h.n.Controller().Active()
	if len(active) != len(running) {
		return true
	}
	for _, id := range active {
		if !running[id] {
			return true
		}
	}
	return false
}

// journal writes the history of every active rollout and of those in
// running that ended since, then sets running to the active ones.
func (h *historian) journal(running map[string]bool) {
	now := h.n.now()
	active := h.n.Controller().Active()
	for _, id := range active {
		running[id] = true
	}
	for id := range running {
		if err := h.n.persistHistory(id, now); err != nil {
			h.n.log.Warn("rollout history not journalled", "rollout", id, "err", err)
		}
	}
	clear(running)
	for _, id := range active {
		running[id] = true
	}
}

// readCells reads every cell of the routing table and every configured
// flag variant's cohort (group: its flag): lifetime counts from its SLO
// recorder, the percentiles of the SLO engine's current slice, the weight
// from the routing table or the flag engine. Once a second, off the
// request path: the recorders the requests already feed are only read.
func (n *Node) readCells() []history.CellReading {
	weights := n.proxy.Weights()
	names := make([]string, 0, len(weights))
	for name := range weights {
		names = append(names, name)
	}
	slices.Sort(names)
	// The window covers the whole second just ended and the partial
	// interval now running: the current interval alone may have begun a
	// moment ago and hold nothing yet while the second's counts do.
	window := time.Second + n.slo.Config().Interval
	out := make([]history.CellReading, 0, len(names))
	for _, name := range names {
		out = append(out, n.readSeries(name, "", weights[name], window))
	}
	fs := n.flags.Load()
	for i := range fs.Len() {
		d := fs.Def(i)
		for j, v := range d.Variants {
			out = append(out, n.readSeries(flags.CellName(d.Name, v), d.Name, d.Weights[j], window))
		}
	}
	return out
}

// readSeries reads one cell's or cohort's SLO recorder.
func (n *Node) readSeries(name, group string, weight float64, window time.Duration) history.CellReading {
	t := n.slo.Cell(name).Totals()
	st := n.slo.Snapshot([]string{name}, window)
	return history.CellReading{
		Name:     name,
		Group:    group,
		Requests: t.Status2xx + t.Status3xx + t.Status4xx + t.Status5xx + t.Other,
		Errors:   t.Status5xx,
		P50:      ms(st.P50),
		P99:      ms(st.P99),
		Weight:   weight,
	}
}

// HistoryDoc is GET /v1/history: this node's view (each node samples the
// requests it served itself; the decider's merged SLIs are not
// re-sampled), one point per cell and per flag variant cohort per second,
// and the journal's events since the same time as the decision markers.
type HistoryDoc struct {
	Node string `json:"node"`
	// View is "node": the points are this node's own traffic.
	View        string                     `json:"view"`
	Since       time.Time                  `json:"since"`
	Percentiles string                     `json:"percentiles"`
	Cells       map[string][]history.Point `json:"cells"`
	// Cohorts are the flag variants' cohorts by "flag=variant", apart
	// from Cells: the same requests seen by variant, so their shares are
	// parts of the flag's traffic, not of the cells'.
	Cohorts   map[string]CohortSeries `json:"cohorts"`
	Decisions []rollout.Event         `json:"decisions"`
}

// CohortSeries is one flag variant's cohort over time: the requests that
// got the variant (with exposure = "marked", those the upstream marked).
// In its points, weight is the variant's weight, weight_share its
// configured or rolled-out part of the flag's traffic and share the part
// of the flag's recorded requests the cohort had.
type CohortSeries struct {
	// Kind is "flag": what the series is a cohort of (cells are not
	// series of this kind; room for other cohorts later).
	Kind    string `json:"kind"`
	Flag    string `json:"flag"`
	Variant string `json:"variant"`
	// Control marks the flag's control variant (what a rollout of another
	// variant is judged against), as the flag is configured now.
	Control bool            `json:"control"`
	Points  []history.Point `json:"points"`
}

// CohortKindFlag is CohortSeries.Kind for a flag variant's cohort.
const CohortKindFlag = "flag"

// cohortSeries wraps a variant's points (name is its flags.CellName), or
// reports false for a cell's name.
func cohortSeries(name string, pts []history.Point, fs *flags.Set) (CohortSeries, bool) {
	flag, variant, ok := flags.SplitCellName(name)
	if !ok {
		return CohortSeries{}, false
	}
	c := CohortSeries{Kind: CohortKindFlag, Flag: flag, Variant: variant, Points: pts}
	if c.Points == nil {
		c.Points = []history.Point{}
	}
	if i := fs.Index(flag); i >= 0 {
		c.Control = fs.Def(i).Control == variant
	}
	return c, true
}

// percentileNote says how a point's p50/p99 are computed (history.CellReading).
const percentileNote = "p50/p99 of the SLO engine's histogram slices covering the second just ended and the slice now running (slo.interval slices): about slo.interval + 1 s of requests, not that second's alone"

// History is the node's history since a time.
func (n *Node) History(since time.Time) (*HistoryDoc, error) {
	doc := &HistoryDoc{Node: n.name, View: "node", Since: since, Percentiles: percentileNote,
		Cells: map[string][]history.Point{}, Cohorts: map[string]CohortSeries{}, Decisions: []rollout.Event{}}
	fs := n.flags.Load()
	for name, pts := range n.hist.store.Since(since.Unix()) {
		if c, ok := cohortSeries(name, pts, fs); ok {
			doc.Cohorts[name] = c
		} else {
			doc.Cells[name] = pts
		}
	}
	evs, err := n.Controller().AuditTail(10000)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if !e.Time.Before(since) {
			doc.Decisions = append(doc.Decisions, e)
		}
	}
	return doc, nil
}
