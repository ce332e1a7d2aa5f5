package rollout

import "encoding/json"

// Judge states, from best to worst.
const (
	StateHealthy      = "healthy"
	StateInconclusive = "inconclusive"
	StateDegraded     = "degraded"
	StateFailing      = "failing"
)

// Verdict is what the judge says about a plan's targets at one tick. The
// lead adapts the slo package's verdict to it, so rollout never imports slo.
type Verdict struct {
	State   string          `json:"state"`             // healthy, inconclusive, degraded or failing
	Rule    string          `json:"rule,omitempty"`    // the rule that decided
	Reason  string          `json:"reason,omitempty"`  // a sentence for the audit log
	Samples int64           `json:"samples"`           // target requests seen in the judged window
	Numbers json.RawMessage `json:"numbers,omitempty"` // the judge's full numbers, stored as-is
}

// sanitized returns v with Numbers dropped when they are not valid JSON, so a
// judge bug cannot make a revert fail to commit.
func (v Verdict) sanitized() Verdict {
	if len(v.Numbers) > 0 && !json.Valid(v.Numbers) {
		v.Numbers = nil
		v.Reason += " (judge numbers were not valid JSON and were dropped)"
	}
	return v
}
