package cellgate

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cellgate/cellgate/admin"
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

// postedPlan decodes a plan posted to /v1/rollouts. A body that is only a
// name, {"name": "cfgplan"}, starts the config's [[plan]] of that name
// (404 when there is none); any other body is a whole plan, whose left-out
// bake and min_requests take [rollout] bake and min_requests.
func (n *Node) postedPlan(raw []byte) (rollout.Plan, error) {
	if name, ok := planName(raw); ok {
		p, err := n.Plan(name)
		if errors.Is(err, rollout.ErrNotFound) {
			return p, admin.NotFound("no [[plan]] named %q in the config", name)
		}
		if err != nil {
			return p, admin.Invalid("%v", err)
		}
		return p, nil
	}
	p, err := rollout.DecodePlanWith(raw, planDefaults(n.config()))
	if err != nil {
		return p, admin.Invalid("%v", err)
	}
	return p, nil
}

// planName reports whether a posted body is only a plan's name,
// {"name": "cfgplan"} (the key spelled exactly so, the name non-empty),
// and returns the name.
func planName(raw []byte) (string, bool) {
	var named map[string]json.RawMessage
	if json.Unmarshal(raw, &named) != nil || len(named) != 1 {
		return "", false
	}
	var name string
	if json.Unmarshal(named["name"], &name) != nil || name == "" {
		return "", false
	}
	return name, true
}

// planDefaults are the config's [rollout] bake and min_requests, which a
// plan takes when it leaves them out.
func planDefaults(c *configs.Config) rollout.PlanDefaults {
	return rollout.PlanDefaults{Bake: c.Rollout.Bake.Duration, MinRequests: int64(c.Rollout.MinRequests)}
}

// decodeConfigPlan turns a [[plan]] table into a plan through its JSON
// form, so config plans and posted plans share one decoder and validator.
func decodeConfigPlan(cfg *configs.Config, raw map[string]any) (rollout.Plan, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return rollout.Plan{}, fmt.Errorf("plan %v: %w", raw["name"], err)
	}
	p, err := rollout.DecodePlanWith(b, planDefaults(cfg))
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
