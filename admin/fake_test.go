package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// fakeBackend is an in-memory Backend for the API tests: a handful of
// cells, rollouts with a tiny state machine, and a journal of every call.
type fakeBackend struct {
	// mu guards every field below.
	mu       sync.Mutex
	cells    []CellStatus
	rollouts map[string]*RolloutStatus
	order    []string // rollout ids in start order
	events   []fakeEvent
	calls    []string // "Method arg…" of every mutation, for assertions
	fail     map[string]error
	notReady bool
	now      time.Time
}

// fakeEvent mirrors the journal event fields the page reads.
type fakeEvent struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Rollout string    `json:"rollout,omitempty"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
	Status  string    `json:"status,omitempty"`
	Step    int       `json:"step"`
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		cells: []CellStatus{
			{Name: "stable-a", Version: "v1", Weight: 100, RPS: 50, P50Ms: 3.5, P99Ms: 20, ErrorRatio: 0.001,
				Endpoints: []EndpointStatus{{Addr: "10.0.0.1:8080", Up: true}}, Up: true,
				BurnRates: []BurnRate{{SLO: "availability", Window: "5m", Rate: 0.4}}},
			{Name: "canary-1", Version: "v2", Weight: 5, RPS: 3, P50Ms: 4, P99Ms: 25, ErrorRatio: 0.02,
				Endpoints: []EndpointStatus{{Addr: "10.0.0.2:8080", Up: false}}, Verdict: "healthy", PinnedSessions: 7,
				Up: false, Failovers: 12},
		},
		rollouts: map[string]*RolloutStatus{},
		fail:     map[string]error{},
		now:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func (f *fakeBackend) failureLocked(method string) error { return f.fail[method] }

func (f *fakeBackend) recordLocked(actor, rollout, action, reason, status string, step int) {
	f.events = append(f.events, fakeEvent{Seq: uint64(len(f.events) + 1), Time: f.now, Actor: actor,
		Rollout: rollout, Action: action, Reason: reason, Status: status, Step: step})
}

func (f *fakeBackend) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// addRolloutLocked puts a rollout in place directly.
func (f *fakeBackend) addRolloutLocked(id, status string) {
	f.rollouts[id] = &RolloutStatus{ID: id, Plan: "ranker-v2", Strategy: "canary", Status: status, Step: 2,
		Steps: []float64{1, 5, 25, 50, 100}, ApproveAt: []float64{50}, Targets: []string{"canary-1"},
		Baseline: []string{"stable-a"}, Weights: map[string]float64{"canary-1": 5, "stable-a": 95}}
	f.order = append(f.order, id)
	f.recordLocked("controller", id, "start", "", status, 1)
	f.recordLocked("controller", id, "step", "", status, 2)
}

func (f *fakeBackend) Status(ctx context.Context) (*StatusDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failureLocked("Status"); err != nil {
		return nil, err
	}
	doc := &StatusDoc{
		Node:    NodeStatus{Name: "node-1", Version: "test", Core: "loop", Started: f.now, Ready: !f.notReady, ConfigGeneration: 1, Decider: true},
		Members: []MemberStatus{{Name: "node-1", Addr: "127.0.0.1:7946", State: "alive", Decider: true}},
		Cells:   append([]CellStatus(nil), f.cells...),
		// node-2 sees stable-a down (its own evidence); node-1 sees canary-1
		// down, as its cells say.
		HealthViews: []NodeHealthView{
			{Node: "node-1", Self: true, At: f.now, Cells: []CellHealthView{{Name: "stable-a", Up: true, Endpoints: 1, InRotation: 1},
				{Name: "canary-1", Endpoints: 1, Out: []EndpointOut{{Addr: "10.0.0.2:8080", Why: "check"}}}}},
			{Node: "node-2", At: f.now, Received: f.now, Cells: []CellHealthView{{Name: "stable-a", Endpoints: 1,
				Out: []EndpointOut{{Addr: "10.0.0.1:8080", Why: "ejected"}}}, {Name: "canary-1", Endpoints: 1,
				Out: []EndpointOut{{Addr: "10.0.0.2:8080", Why: "check"}}}}},
		},
	}
	if n := len(f.order); n > 0 {
		r := *f.rollouts[f.order[n-1]]
		doc.Rollout = &r
	}
	return doc, nil
}

func (f *fakeBackend) Cells(ctx context.Context) ([]CellStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failureLocked("Cells"); err != nil {
		return nil, err
	}
	return append([]CellStatus(nil), f.cells...), nil
}

func (f *fakeBackend) SetWeight(ctx context.Context, cell string, w float64, actor, reason string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("SetWeight %s %v %s %s", cell, w, actor, reason))
	for i := range f.cells {
		if f.cells[i].Name == cell {
			f.cells[i].Weight = w
			f.recordLocked(actor, "", "set_weight", reason, "", 0)
			return f.cells[i], nil
		}
	}
	return nil, NotFound("no cell %q", cell)
}

func (f *fakeBackend) StartRollout(ctx context.Context, plan json.RawMessage, actor string) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("StartRollout %s %s", plan, actor))
	if err := f.failureLocked("StartRollout"); err != nil {
		return "", "", err
	}
	var p struct {
		Name    string   `json:"name"`
		Targets []string `json:"targets"`
		Steps   []float64
	}
	dec := json.NewDecoder(bytes.NewReader(plan))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return "", "", Invalid("decode plan: %v", err)
	}
	if p.Name == "" {
		return "", "", Invalid("invalid plan: name is required")
	}
	for _, r := range f.rollouts {
		if r.Status == "progressing" || r.Status == "paused" || r.Status == "awaiting_approval" {
			return "", "", Conflict("rollout %s is still active on these cells", r.ID)
		}
	}
	id := fmt.Sprintf("%s-%d", p.Name, len(f.order)+1)
	f.rollouts[id] = &RolloutStatus{ID: id, Plan: p.Name, Status: "progressing", Steps: p.Steps, Targets: p.Targets}
	f.order = append(f.order, id)
	f.recordLocked(actor, id, "start", "", "progressing", 0)
	return id, "progressing", nil
}

// fakeView is what the fake answers for one rollout.
type fakeView struct {
	*RolloutStatus
	Decisions []fakeEvent `json:"decisions"`
}

func (f *fakeBackend) viewLocked(id string) (any, error) {
	r, ok := f.rollouts[id]
	if !ok {
		return nil, NotFound("no rollout %q", id)
	}
	v := fakeView{RolloutStatus: r, Decisions: []fakeEvent{}}
	for _, e := range f.events {
		if e.Rollout == id {
			v.Decisions = append(v.Decisions, e)
		}
	}
	return v, nil
}

func (f *fakeBackend) Rollout(ctx context.Context, id string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.viewLocked(id)
}

func (f *fakeBackend) Rollouts(ctx context.Context) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*RolloutStatus{}
	for _, id := range f.order {
		out = append(out, f.rollouts[id])
	}
	return out, nil
}

// transitions says which status an action leads to from which statuses.
var transitions = map[string]struct {
	from []string
	to   string
}{
	"pause":   {[]string{"progressing", "awaiting_approval"}, "paused"},
	"resume":  {[]string{"paused"}, "progressing"},
	"approve": {[]string{"awaiting_approval"}, "progressing"},
	"abort":   {[]string{"progressing", "paused", "awaiting_approval"}, "aborted"},
	"promote": {[]string{"progressing", "paused", "awaiting_approval"}, "promoted"},
}

func (f *fakeBackend) RolloutAction(ctx context.Context, id, action, actor, reason string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("RolloutAction %s %s %s %s", id, action, actor, reason))
	r, ok := f.rollouts[id]
	if !ok {
		return nil, NotFound("no rollout %q", id)
	}
	tr := transitions[action]
	for _, from := range tr.from {
		if r.Status == from {
			r.Status = tr.to
			f.recordLocked(actor, id, action, reason, r.Status, r.Step)
			return f.viewLocked(id)
		}
	}
	return nil, BadState("cannot %s rollout %s: it is %s", action, id, r.Status)
}

func (f *fakeBackend) Audit(ctx context.Context, q AuditQuery) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []fakeEvent{}
	for _, e := range f.events {
		if e.Seq > q.Since {
			out = append(out, e)
		}
	}
	if q.Tail {
		out = out[max(0, len(out)-q.Limit):]
	}
	return out[:min(len(out), q.Limit)], nil
}

func (f *fakeBackend) Reload(ctx context.Context, actor string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Reload "+actor)
	if err := f.failureLocked("Reload"); err != nil {
		return nil, err
	}
	return map[string]any{"status": "reloaded", "generation": 2}, nil
}

func (f *fakeBackend) Signal(ctx context.Context, cell, name string, value float64, actor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("Signal %s %s %v %s", cell, name, value, actor))
	for _, c := range f.cells {
		if c.Name == cell {
			return nil
		}
	}
	return NotFound("no cell %q", cell)
}

func (f *fakeBackend) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.notReady
}

// errBoom is a backend failure that is not an *Error.
var errBoom = errors.New("boom: disk on fire")
