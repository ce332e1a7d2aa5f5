package rollout

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// nameRE keeps plan names safe in URLs, ids and journal keys.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks the plan against the known cells (name → current weight)
// and returns every problem at once as a *ValidationError, or nil. A nil
// knownCells skips the checks that need them (cell existence), which is what
// `cellgate check` does for plans named before the cells are known.
// It is pure: it reads p and knownCells only.
func (p *Plan) Validate(knownCells map[string]float64) error {
	var v validator
	if !nameRE.MatchString(p.Name) {
		v.addf("name %q must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	v.strategy(p)
	v.cells(p, knownCells)
	v.steps(p)
	v.numbers(p)
	v.webhooks(p.Webhooks)
	v.signals(p)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// validator collects problems so Validate can report them all.
type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) strategy(p *Plan) {
	switch p.Strategy {
	case StrategyCanary:
	case StrategyFlag:
		if p.Flag == "" || p.Variant == "" {
			v.addf("strategy flag needs \"flag\" and \"variant\"")
			break
		}
		if len(p.Targets) != 1 || p.Targets[0] != FlagCell(p.Flag, p.Variant) {
			v.addf("a flag plan's targets are derived from flag and variant: leave them out")
		}
		for _, b := range p.Baseline {
			if !strings.HasPrefix(b, p.Flag+"=") {
				v.addf("a flag plan's baseline is derived (the flag's other variants): %q is not one", b)
			}
		}
	case StrategyRolling, StrategyBlueGreen:
		if len(p.Targets) != len(p.Baseline) {
			v.addf("strategy %s pairs targets with baseline cells: %d targets but %d baseline", p.Strategy, len(p.Targets), len(p.Baseline))
		}
	default:
		v.addf("strategy %q must be canary, rolling, bluegreen or flag", p.Strategy)
	}
	if p.Strategy != StrategyFlag && (p.Flag != "" || p.Variant != "") {
		v.addf("\"flag\" and \"variant\" belong to strategy flag, not %s", p.Strategy)
	}
	switch p.RevertTo {
	case "", RevertLastHealthy, RevertStart:
	default:
		v.addf("revert_to %q must be last_healthy or start", p.RevertTo)
	}
}

func (v *validator) cells(p *Plan, known map[string]float64) {
	if len(p.Targets) == 0 {
		v.addf("targets: at least one cell is needed")
	}
	if len(p.Baseline) == 0 {
		v.addf("baseline: at least one cell is needed")
	}
	seen := map[string]string{}
	check := func(role, c string) {
		if c == "" {
			v.addf("%s: empty cell name", role)
			return
		}
		if prev, dup := seen[c]; dup {
			if prev != role {
				v.addf("cell %q is both a target and a baseline cell", c)
			} else {
				v.addf("%s: cell %q is listed twice", role, c)
			}
			return
		}
		seen[c] = role
		if _, ok := known[c]; known != nil && !ok {
			v.addf("%s: unknown cell %q", role, c)
		}
	}
	for _, c := range p.Targets {
		check("targets", c)
	}
	for _, c := range p.Baseline {
		check("baseline", c)
	}
}

func (v *validator) steps(p *Plan) {
	if len(p.Steps) == 0 {
		v.addf("steps: at least one step is needed")
		return
	}
	for i, s := range p.Steps {
		if math.IsNaN(s) || s <= 0 || s > 100 {
			v.addf("steps[%d] = %g is outside (0, 100]", i, s)
		}
		if i > 0 && s <= p.Steps[i-1] {
			v.addf("steps must increase: steps[%d] = %g follows %g", i, s, p.Steps[i-1])
		}
	}
	if last := p.Steps[len(p.Steps)-1]; last != 100 {
		v.addf("the last step must be 100, not %g", last)
	}
	for _, a := range p.ApproveAt {
		if !slices.Contains(p.Steps, a) {
			v.addf("approve_at %g is not one of the steps %v", a, p.Steps)
		}
	}
	if p.Strategy == StrategyRolling && len(p.Targets) == len(p.Baseline) && len(p.Targets) > 0 {
		prev := 0
		for i, s := range p.Steps {
			n := pairsSwitched(s, len(p.Targets))
			if n == prev {
				v.addf("steps[%d] = %g switches %d of %d pairs, the same as the step before it", i, s, n, len(p.Targets))
			}
			prev = n
		}
	}
}

func (v *validator) numbers(p *Plan) {
	if p.Bake < 0 {
		v.addf("bake %s must not be negative", p.Bake.D())
	}
	if p.MinRequests < 0 {
		v.addf("min_requests %d must not be negative", p.MinRequests)
	}
	if m := p.MaxStepPerTick; math.IsNaN(m) || m < 0 || m > 100 {
		v.addf("max_step_per_tick %g must be in [0, 100] (0: the controller's default)", m)
	}
}

func (v *validator) webhooks(w *Webhooks) {
	if w == nil {
		return
	}
	for _, h := range []struct{ name, u string }{{"pre_step", w.PreStep}, {"post_promotion", w.PostPromotion}, {"on_rollback", w.OnRollback}} {
		if h.u == "" {
			continue
		}
		u, err := url.Parse(h.u)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.addf("webhooks.%s %q must be an absolute http or https URL", h.name, h.u)
		}
	}
	if w.Timeout < 0 {
		v.addf("webhooks.timeout %s must not be negative", w.Timeout.D())
	}
}

func (v *validator) signals(p *Plan) {
	for i, g := range p.Signals {
		if g.Name == "" {
			v.addf("signals[%d]: name is required", i)
		}
		if math.IsNaN(g.Threshold) || math.IsInf(g.Threshold, 0) {
			v.addf("signals[%d]: threshold must be a finite number", i)
		}
		switch g.BadWhen {
		case "", BadAbove, BadBelow:
		default:
			v.addf("signals[%d]: bad_when %q must be above or below", i, g.BadWhen)
		}
		if g.Cell == "" {
			continue
		}
		if !slices.Contains(p.Targets, g.Cell) && !slices.Contains(p.Baseline, g.Cell) {
			v.addf("signals[%d]: cell %q is not one of the plan's cells", i, g.Cell)
		}
	}
}
