package rollout

import (
	"slices"
	"strings"
)

// FlagCell is the name the controller knows a flag variant by: a
// pseudo-cell "flag=variant" (flags.CellName is the same rule; '=' never
// occurs in a cell name). A flag's weights thus live, move, revert, get
// journaled and gossiped exactly like cells' weights.
func FlagCell(flag, variant string) string { return flag + "=" + variant }

// resolveFlag fills a "flag" plan's targets and baseline from the known
// cells: the variant is the target, every other variant of the flag the
// baseline, so the plan's canary arithmetic gives the variant steps[i] %
// and leaves the others' relative weights alone. A plan that names its
// own targets or baseline keeps them (and Validate refuses it).
func (p *Plan) resolveFlag(known map[string]float64) {
	if p.Strategy != StrategyFlag || p.Flag == "" || p.Variant == "" || len(p.Targets)+len(p.Baseline) > 0 {
		return
	}
	target := FlagCell(p.Flag, p.Variant)
	p.Targets = []string{target}
	prefix := p.Flag + "="
	for name := range known {
		if strings.HasPrefix(name, prefix) && name != target {
			p.Baseline = append(p.Baseline, name)
		}
	}
	slices.Sort(p.Baseline)
}

// FlagRollout returns the active rollout of a flag, if any, with the
// percent of the flag's traffic its current step gives the variant (0
// before the first step). For OFREP's metadata; it reads memory only.
func (c *Controller) FlagRollout(flag string) (id string, stepPercent float64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.active {
		if d.Plan.Strategy == StrategyFlag && d.Plan.Flag == flag {
			if d.Step >= 0 && d.Step < len(d.Plan.Steps) {
				stepPercent = d.Plan.Steps[d.Step]
			}
			return d.ID, stepPercent, true
		}
	}
	return "", 0, false
}
