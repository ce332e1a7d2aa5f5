package rollout

import "time"

// Audit actions. Every change to a rollout document or a cell weight is
// journalled as exactly one Event.
const (
	ActionStart         = "start"          // a plan was started
	ActionStep          = "step"           // the plan entered its next step
	ActionRamp          = "ramp"           // weights moved toward the step under the per-tick cap
	ActionHold          = "hold"           // a pre-step webhook failed: the plan holds
	ActionDegraded      = "degraded"       // a degraded verdict was counted
	ActionRecovered     = "recovered"      // the degraded count went back to 0
	ActionAwaitApproval = "await_approval" // an approval gate was reached
	ActionApprove       = "approve"
	ActionPause         = "pause"
	ActionResume        = "resume"
	ActionPromoteNow    = "promote_now"
	ActionPromoted      = "promoted" // the last step baked healthy: done
	ActionRollback      = "rollback" // the judge or a signal reverted the plan
	ActionAbort         = "abort"
	ActionSetWeight     = "set_weight" // a manual weight change
	ActionPeer          = "peer"       // a newer document arrived from a peer
	ActionSyncCells     = "sync_cells" // a config reload changed cells
)

// Actors of the audit log.
const (
	ActorController = "controller"
	// Admin actors are "admin:<token name>", peers "peer:<node>".
)

// Event is one audit log entry. Seq is assigned by the journal at commit
// and never reused: the log is append-only and gap-free.
type Event struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Actor       string    `json:"actor"`
	Rollout     string    `json:"rollout,omitempty"`
	Action      string    `json:"action"`
	Reason      string    `json:"reason,omitempty"`
	Status      Status    `json:"status,omitempty"`
	Step        int       `json:"step"`                   // 1-based step number after the event (0: none yet)
	StepPercent float64   `json:"step_percent,omitempty"` // that step's percentage
	Generation  uint64    `json:"generation,omitempty"`   // the document's generation after the event
	Verdict     *Verdict  `json:"verdict,omitempty"`      // what the judge said, when a verdict decided
	Before      Weights   `json:"before,omitempty"`
	After       Weights   `json:"after,omitempty"`
}

// ReleaseRecord is one entry of the release catalog, keyed by rollout id.
type ReleaseRecord struct {
	Rollout string    `json:"rollout"`
	Version string    `json:"version,omitempty"`
	Plan    string    `json:"plan"`
	Notes   string    `json:"notes,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	// Outcome is the rollout's status: progressing (or paused, …) while it
	// runs, then promoted, rolled_back or aborted.
	Outcome Status `json:"outcome"`
	// Verdict is the last verdict a decision was made on: for a finished
	// rollout, the final SLI snapshot.
	Verdict *Verdict `json:"verdict,omitempty"`
}

// RolloutView is the JSON shape of GET /v1/rollouts/{id}.
type RolloutView struct {
	ID          string    `json:"id"`
	Status      Status    `json:"status"`
	Step        int       `json:"step"` // 1-based; 0 before the first step
	StepPercent float64   `json:"step_percent"`
	Steps       int       `json:"steps"`
	Weights     Weights   `json:"weights"`
	W0          Weights   `json:"w0"`
	Reason      string    `json:"reason,omitempty"`
	Hold        string    `json:"hold,omitempty"`
	Generation  uint64    `json:"generation"`
	Plan        Plan      `json:"plan"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Ended       time.Time `json:"ended,omitzero"`
	Decisions   []Event   `json:"decisions,omitempty"` // only in the single-rollout view
}

// view renders a document (without decisions).
func (d *Document) view() RolloutView {
	c := d.clone()
	return RolloutView{
		ID: c.ID, Status: c.Status, Step: c.Step + 1, StepPercent: c.stepPercent(),
		Steps: len(c.Plan.Steps), Weights: c.Weights, W0: c.W0, Reason: c.Reason,
		Hold: c.Hold, Generation: c.Generation, Plan: c.Plan,
		Created: c.Created, Updated: c.Updated, Ended: c.Ended,
	}
}
