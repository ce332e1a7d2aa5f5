package cellgate

import (
	"github.com/cellgate/cellgate/balancer"
	"maps"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/rollout"
)

// Feature flags (issue 17) ride on the cell machinery: the controller
// knows each variant as a pseudo-cell "flag=variant" (flags.CellName), so
// a flag's weights are journaled, gossiped, stepped by plans, judged and
// reverted exactly as cells are; applyWeights hands those names to the
// flag engine instead of the proxy, and the SLO engine records each
// variant's cohort under the same name.

// flagDefs derives the flag engine's definitions from [[flag]].
func flagDefs(c *configs.Config) []flags.Def {
	out := make([]flags.Def, len(c.FlagList))
	for i := range c.FlagList {
		f := &c.FlagList[i]
		d := flags.Def{Name: f.Name, Variants: f.VariantNames(), Control: f.ControlVariant(),
			Boolean: f.Type == configs.FlagBoolean, Marked: f.Exposure == configs.ExposureMarked}
		for _, v := range d.Variants {
			d.Weights = append(d.Weights, f.Variants[v])
		}
		out[i] = d
	}
	return out
}

// addFlagWeights adds every variant's configured weight to w by its
// pseudo-cell name.
func addFlagWeights(w map[string]float64, c *configs.Config) {
	for i := range c.FlagList {
		f := &c.FlagList[i]
		for v, x := range f.Variants {
			w[flags.CellName(f.Name, v)] = x
		}
	}
}

// splitFlagWeights moves the pseudo-cells of w into a second map.
func splitFlagWeights(w map[string]float64) (cells, variants map[string]float64) {
	cells, variants = map[string]float64{}, map[string]float64{}
	for name, x := range w {
		if _, _, ok := flags.SplitCellName(name); ok {
			variants[name] = x
		} else {
			cells[name] = x
		}
	}
	return cells, variants
}

// liveWeights are every cell's and every variant's current weight.
func (n *Node) liveWeights() map[string]float64 {
	w := n.proxy.Weights()
	maps.Copy(w, n.flags.Load().Weights())
	return w
}

// Flags is the node's flag engine (in-process use: tests, demo).
func (n *Node) Flags() *flags.Engine { return n.flags }

// flagControl is what a flag plan's variant is judged against: the
// control variant's cohort, not every other variant (a third variant's
// own trouble must not hide or fake the released one's). A plan that
// releases the control itself is judged against the rest.
func (n *Node) flagControl(p *rollout.Plan) []string {
	s := n.flags.Load()
	i := s.Index(p.Flag)
	if i < 0 {
		return p.Baseline
	}
	ctl := flags.CellName(p.Flag, s.Def(i).Control)
	if ctl == p.Targets[0] {
		return p.Baseline
	}
	return []string{ctl}
}

// ofrep is the node's OFREP service, for the admin listener and the data
// plane alike.
func (n *Node) ofrep() *flags.OFREP {
	return &flags.OFREP{Engine: n.flags, Rollout: func(flag string) (string, float64, bool) {
		return n.Controller().FlagRollout(flag)
	}}
}

// flagPinConfig sizes each flag's session pin table: a sixteenth of
// routing.pin_memory (at least the balancer's minimum), the same idle.
// Zero MaxBytes (pins off for cells) turns them off for flags too.
func flagPinConfig(c *configs.Config) balancer.PinConfig {
	if c.Routing.PinMemory <= 0 {
		return balancer.PinConfig{}
	}
	return balancer.PinConfig{MaxBytes: max(c.Routing.PinMemory/16, balancer.MinPinMemory), Idle: c.Routing.PinIdle.Duration}
}
