package cellgate

import (
	"encoding/json"
	"fmt"

	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/rollout"
)

// Plan returns the plan of that name from the node's config ([[plan]]),
// decoded strictly and validated against the configured cells.
func (n *Node) Plan(name string) (rollout.Plan, error) {
	cfg := n.config()
	for _, raw := range cfg.Plans {
		if raw["name"] == name {
			return decodeConfigPlan(cfg, raw)
		}
	}
	return rollout.Plan{}, fmt.Errorf("plan %q: %w", name, rollout.ErrNotFound)
}

// decodeConfigPlan turns a [[plan]] table into a plan through its JSON
// form, so config plans and posted plans share one decoder and validator.
func decodeConfigPlan(cfg *configs.Config, raw map[string]any) (rollout.Plan, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return rollout.Plan{}, fmt.Errorf("plan %v: %w", raw["name"], err)
	}
	p, err := rollout.DecodePlan(b)
	if err != nil {
		return rollout.Plan{}, fmt.Errorf("plan %v: %w", raw["name"], err)
	}
	if err := p.Validate(configWeights(cfg)); err != nil {
		return rollout.Plan{}, fmt.Errorf("plan %v: %w", raw["name"], err)
	}
	return p, nil
}

// CheckPlans validates every [[plan]] of cfg as the node would start it,
// returning all problems located in the config file (nil when all are
// valid). `cellgate check` and New run it.
func CheckPlans(cfg *configs.Config) error {
	var probs []configs.Problem
	for i, raw := range cfg.Plans {
		if _, err := decodeConfigPlan(cfg, raw); err != nil {
			probs = append(probs, cfg.Problem(fmt.Sprintf("plan.%d", i), err.Error()))
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &configs.Error{File: cfg.File, Problems: probs}
}
