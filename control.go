package cellgate

import (
	"errors"
	"fmt"
	"time"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/rollout"
	"github.com/cellgate/cellgate/slo"
)

// openControl opens the journal and the rollout controller over it,
// resuming any rollout the journal holds. wait > 0 keeps retrying while
// another process holds the journal (a graceful handover's predecessor
// releasing it).
func (n *Node) openControl(cfg *configs.Config, wait time.Duration) (*rollout.Controller, error) {
	deadline := time.Now().Add(wait)
	for {
		ctrl, err := rollout.Open(cfg.State.Path, rollout.Options{
			Cells:          configWeights(cfg),
			Tick:           cfg.Rollout.Tick.Duration,
			DegradedTicks:  cfg.Rollout.DegradedTicks,
			MaxStepPerTick: cfg.Rollout.MaxStepPerTick,
			AuditRetention: auditRetention(cfg),
			Logger:         n.log.With("component", "rollout"),
		}, rollout.Hooks{
			Judge:   n.judge,
			Apply:   n.applyWeights,
			Now:     n.now,
			Publish: n.publish,
			Decider: n.mayPromote,
			Alarm:   n.slo.Alarms(),
			Watch:   n.slo.Watch,
		})
		if err == nil {
			return ctrl, nil
		}
		if !errors.Is(err, rollout.ErrLocked) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open journal: %w", err)
		}
	}
}

// applyWeights publishes the controller's committed weights to the proxy,
// saying whether they undo a rollout (then pins to the cells that lose
// share go at once). An error makes the controller re-send on its next tick.
func (n *Node) applyWeights(w map[string]float64, revert bool) error {
	cells, variants := splitFlagWeights(w)
	var ferr error
	if len(variants) > 0 {
		ferr = n.flags.SetWeights(variants, revert)
	}
	if len(cells) == 0 {
		return ferr
	}
	if revert {
		return errors.Join(n.proxy.RevertWeights(cells), ferr)
	}
	return errors.Join(n.proxy.SetWeights(cells), ferr)
}

// judge adapts the SLO engine's verdict for the controller.
func (n *Node) judge(p *rollout.Plan, since, now time.Time) rollout.Verdict {
	if v, down := n.targetDown(p); down {
		return v
	}
	gates := make([]slo.SignalGate, 0, len(p.Signals))
	for _, g := range p.Signals {
		gates = append(gates, slo.SignalGate{Name: g.Name, Threshold: g.Threshold, Direction: g.BadWhen})
	}
	// A baseline that no longer takes traffic (the last step of a canary,
	// a blue/green switch) has nothing to compare with: the canary is then
	// judged on its own SLOs (burn rates, fail ratio, signals).
	baseline := p.Baseline
	if p.Strategy == rollout.StrategyFlag {
		baseline = n.flagControl(p)
	}
	live := n.liveWeights()
	total := 0.0
	for _, c := range baseline {
		total += live[c]
	}
	if total == 0 {
		baseline = nil
	}
	v := n.slo.Judge(p.Targets, baseline, since, gates)
	return rollout.Verdict{
		State:   v.State.String(),
		Rule:    v.Rule,
		Reason:  v.Reason,
		Samples: int64(v.Canary.Requests),
		Numbers: mustJSON(v),
	}
}

// publish hands a rollout document to the fleet (no-op on a single node).
// The controller calls it with its lock held; gossip only queues.
func (n *Node) publish(doc rollout.Document) {
	if f := n.fleet.Load(); f != nil {
		f.publish(doc)
	}
}

// mayPromote says whether this node may promote: on a single node always;
// in a fleet only the decider, and only while it sees a majority of the
// last known membership. Reverts never ask.
func (n *Node) mayPromote() bool {
	f := n.fleet.Load()
	if f == nil {
		return true
	}
	return f.c.IsDecider() && f.c.HasMajority()
}

// auditRetention is the controller's view of state.audit_retention.
func auditRetention(cfg *configs.Config) rollout.Retention {
	r := cfg.State.AuditRetention
	return rollout.Retention{MaxAge: r.Age.Duration, MaxEvents: r.Events}
}

// targetDown judges a rollout whose target cell is down on this node as
// failing: its users are being served by their failover cells, so the
// SLO engine would see nothing wrong with the canary — yet a release whose
// every endpoint died is the clearest failure there is. It is rolled back,
// not failed over for ever.
func (n *Node) targetDown(p *rollout.Plan) (rollout.Verdict, bool) {
	for _, t := range p.Targets {
		if _, _, variant := flags.SplitCellName(t); variant {
			continue // a flag's cohort spans every cell
		}
		if !n.proxy.CellUp(t) {
			return rollout.Verdict{
				State:  rollout.StateFailing,
				Rule:   "cell_down",
				Reason: fmt.Sprintf("target cell %s is down on %s: no endpoint in rotation", t, n.name),
			}, true
		}
	}
	return rollout.Verdict{}, false
}
