package cellgate

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/rollout"
)

// statusWindow is the look-back of the per-cell figures on /v1/status.
const statusWindow = 10 * time.Second

// backend is the node as the admin API drives it.
type backend struct{ n *Node }

var _ admin.Backend = backend{}

// Version is the build version shown on /v1/status; cmd/cellgate sets it.
var Version = "dev"

func (b backend) Ready() bool { return b.n.Ready() }

func (b backend) Status(ctx context.Context) (*admin.StatusDoc, error) {
	n := b.n
	doc := &admin.StatusDoc{Node: admin.NodeStatus{
		Name: n.name, Version: Version, Started: n.started, Ready: n.Ready(),
		ConfigGeneration: n.configGen.Load(), Decider: n.mayPromote(), Core: n.proxy.Core(),
	}}
	if f := n.fleet.Load(); f != nil {
		alive := f.c.Members()
		decider := f.c.Decider()
		addrs := f.c.MemberAddrs()
		for _, m := range f.c.KnownMembers() {
			state := "dead"
			if slices.Contains(alive, m) {
				state = "alive"
			}
			doc.Members = append(doc.Members, admin.MemberStatus{Name: m, Addr: addrs[m], State: state, Decider: m == decider})
		}
	}
	cells, err := b.Cells(ctx)
	if err != nil {
		return nil, err
	}
	doc.Cells = cells
	doc.Rollout = b.currentRollout()
	doc.HealthViews = n.healthViewsStatus()
	for _, s := range n.disc.watcher().Status() {
		ds := admin.DiscoveryStatus{Target: s.Target, Endpoints: s.Endpoints,
			Resolved: s.Resolved, Error: s.Error, Since: s.Since, Expired: s.Expired, Failures: s.Failures}
		for addr, w := range s.Weights {
			if ds.SRV == nil {
				ds.SRV = map[string]admin.SRVWeight{}
			}
			ds.SRV[addr] = admin.SRVWeight{Priority: w.Priority, Weight: w.Weight}
		}
		doc.Discovery = append(doc.Discovery, ds)
	}
	return doc, nil
}

func (b backend) Cells(context.Context) ([]admin.CellStatus, error) {
	n := b.n
	verdicts := b.verdicts()
	pins := n.proxy.Pins() // nil when pins are off
	var out []admin.CellStatus
	for _, c := range n.proxy.Status() {
		st := n.slo.Snapshot([]string{c.Name}, statusWindow)
		cs := admin.CellStatus{
			Name: c.Name, Version: c.Version, Weight: c.Weight,
			RPS:        float64(st.Requests) / statusWindow.Seconds(),
			P50Ms:      ms(st.P50),
			P99Ms:      ms(st.P99),
			ErrorRatio: st.ErrorRatio,
			Verdict:    verdicts[c.Name],

			PinnedSessions: pins[c.Name],
			Up:             c.Up, Failovers: c.Failovers, InflightFailed: c.InflightFailed,
			Protocols: c.Protocols,
		}
		for _, e := range c.Endpoints {
			cs.Endpoints = append(cs.Endpoints, admin.EndpointStatus{Addr: e.Addr, Up: e.Up, Outstanding: e.Outstanding})
		}
		for _, br := range n.slo.BurnRates([]string{c.Name}) {
			cs.BurnRates = append(cs.BurnRates, admin.BurnRate{SLO: br.SLO, Window: br.Length.String(), Rate: br.Rate})
		}
		out = append(out, cs)
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// verdicts maps each target cell of an active rollout to its last verdict.
func (b backend) verdicts() map[string]string {
	out := map[string]string{}
	for _, id := range b.n.Controller().Active() {
		v, err := b.n.Controller().Rollout(id)
		if err != nil {
			continue
		}
		for _, ev := range slices.Backward(v.Decisions) {
			if ev.Verdict != nil {
				for _, t := range v.Plan.Targets {
					out[t] = ev.Verdict.State
				}
				break
			}
		}
	}
	return out
}

// currentRollout is the active rollout, else the most recent one.
func (b backend) currentRollout() *admin.RolloutStatus {
	views, err := b.n.Controller().Rollouts()
	if err != nil || len(views) == 0 {
		return nil
	}
	v := views[0] // newest first
	for _, w := range views {
		if !w.Status.Terminal() {
			v = w
			break
		}
	}
	return &admin.RolloutStatus{
		ID: v.ID, Plan: v.Plan.Name, Strategy: v.Plan.Strategy, Status: string(v.Status),
		Step: v.Step, Steps: v.Plan.Steps, ApproveAt: v.Plan.ApproveAt,
		Targets: v.Plan.Targets, Baseline: v.Plan.Baseline, Weights: v.Weights,
		Reason: v.Reason, Hold: v.Hold, Version: v.Plan.Release.Version,
		Created: v.Created, Updated: v.Updated,
	}
}

func (b backend) SetWeight(_ context.Context, cell string, w float64, actor, reason string) (any, error) {
	if _, ok := b.n.liveWeights()[cell]; !ok {
		return nil, admin.NotFound("no cell %q", cell)
	}
	if err := b.n.SetWeight(cell, w, actor, reason); err != nil {
		return nil, err
	}
	return map[string]any{"cell": cell, "weight": w}, nil
}

func (b backend) StartRollout(_ context.Context, raw json.RawMessage, actor string) (string, string, error) {
	p, err := b.n.postedPlan(raw)
	if err != nil {
		return "", "", err
	}
	id, err := b.n.Controller().Start(p, actor)
	if err != nil {
		return "", "", err
	}
	return id, string(rollout.StatusProgressing), nil
}

func (b backend) Rollout(_ context.Context, id string) (any, error) {
	return b.n.Controller().Rollout(id)
}

func (b backend) Rollouts(context.Context) (any, error) { return b.n.Controller().Rollouts() }

func (b backend) RolloutAction(_ context.Context, id, action, actor, reason string) (any, error) {
	c := b.n.Controller()
	var err error
	switch action {
	case admin.ActionPause:
		err = c.Pause(id, actor, reason)
	case admin.ActionResume:
		err = c.Resume(id, actor)
	case admin.ActionApprove:
		err = c.Approve(id, actor)
	case admin.ActionAbort:
		err = c.Abort(id, actor, reason)
	case admin.ActionPromote:
		err = c.PromoteNow(id, actor)
	default:
		return nil, admin.Invalid("unknown action %q", action)
	}
	if err != nil {
		return nil, err
	}
	return c.Rollout(id)
}

func (b backend) Audit(_ context.Context, q admin.AuditQuery) (any, error) {
	var evs []rollout.Event
	var err error
	if q.Tail {
		evs, err = b.n.Controller().AuditTail(q.Limit)
	} else {
		evs, err = b.n.Controller().Audit(q.Since, q.Limit)
	}
	if evs == nil {
		evs = []rollout.Event{}
	}
	return evs, err
}

func (b backend) Reload(_ context.Context, actor string) (any, error) {
	err := b.n.Reload()
	switch {
	case errors.Is(err, ErrNoConfigFile):
		return nil, admin.BadState("%v", err)
	case err != nil:
		return nil, admin.Invalid("%v", err)
	}
	b.n.log.Info("config reloaded", "actor", actor)
	return map[string]any{"status": "reloaded", "config_generation": b.n.configGen.Load()}, nil
}

func (b backend) Signal(_ context.Context, cell, name string, v float64, actor string) error {
	if _, ok := b.n.proxy.Weights()[cell]; !ok {
		return admin.NotFound("no cell %q", cell)
	}
	b.n.slo.SetSignal(cell, name, v, b.n.now())
	b.n.log.Info("signal", "cell", cell, "name", name, "value", v, "actor", actor)
	return nil
}

// mapError turns the rollout package's sentinels into API errors.
func mapError(err error) *admin.Error {
	switch {
	case errors.Is(err, rollout.ErrNotFound):
		return admin.NotFound("%s", err)
	case errors.Is(err, rollout.ErrConflict):
		return admin.Conflict("%s", err)
	case errors.Is(err, rollout.ErrInvalid):
		return admin.Invalid("%s", err)
	case errors.Is(err, rollout.ErrBadState):
		return admin.BadState("%s", err)
	}
	return nil
}
