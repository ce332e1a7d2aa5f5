package admin

import (
	"context"
	"encoding/json"
)

// Backend is what the admin API drives; the node implements it.
//
// Rules for implementations:
//   - Methods must be safe for concurrent use; the API calls them from
//     many request goroutines at once.
//   - They should honour ctx (the request's context) and not block for
//     long: the status page polls every second.
//   - Returned values are encoded with encoding/json after the call
//     returns; do not hand out structures that keep changing.
//   - Errors that are *Error (possibly wrapped) pick the HTTP status and
//     code; see NotFound, Conflict, Invalid and BadState. Other errors are
//     passed to Options.MapError, then answered 500 "internal".
//   - actor is "admin:<token name>" (or "admin:loopback" when no token is
//     configured); journal it with every mutation.
type Backend interface {
	// Status is the document GET /v1/status returns and the status page reads.
	Status(ctx context.Context) (*StatusDoc, error)
	// Cells is GET /v1/cells: every cell, in a stable order.
	Cells(ctx context.Context) ([]CellStatus, error)
	// SetWeight sets a cell's weight by hand; the result is echoed (e.g.
	// the updated cell or the journal event).
	SetWeight(ctx context.Context, cell string, weight float64, actor, reason string) (any, error)
	// StartRollout starts a plan. plan is one syntactically valid JSON
	// object; the backend decodes it strictly (unknown fields are Invalid)
	// and validates it. It returns the new rollout's id and status.
	StartRollout(ctx context.Context, plan json.RawMessage, actor string) (id, status string, err error)
	// Rollout is GET /v1/rollouts/{id}: at least id, status, step, weights
	// (cell → weight) and decisions (this rollout's journal entries).
	Rollout(ctx context.Context, id string) (any, error)
	// Rollouts is GET /v1/rollouts: every rollout, a JSON list.
	Rollouts(ctx context.Context) (any, error)
	// RolloutAction applies one of the Action… constants to a rollout and returns
	// its new view (the same shape as Rollout).
	RolloutAction(ctx context.Context, id, action, actor, reason string) (any, error)
	// Audit is GET /v1/audit?since=N&limit=M: one page of journal events,
	// oldest first (newest last), as a JSON list.
	Audit(ctx context.Context, q AuditQuery) (any, error)
	// Reload re-reads the config file. An invalid file changes nothing and
	// is answered with Invalid, the message carrying file:line.
	Reload(ctx context.Context, actor string) (any, error)
	// Signal feeds one external per-cell signal to the judge.
	Signal(ctx context.Context, cell, name string, value float64, actor string) error
	// Ready reports whether the node serves traffic (GET /readyz).
	Ready() bool
}

// Rollout operator actions of POST /v1/rollouts/{id}/{action}.
const (
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionApprove = "approve"
	ActionAbort   = "abort"
	ActionPromote = "promote" // promote now: skip the remaining steps
)

// isAction reports whether a is one of the Action… constants.
func isAction(a string) bool {
	switch a {
	case ActionPause, ActionResume, ActionApprove, ActionAbort, ActionPromote:
		return true
	}
	return false
}

// AuditQuery is one page of GET /v1/audit.
type AuditQuery struct {
	// Since: events with seq > Since, at most Limit, oldest first. A
	// client pages forward by passing the last seq it got, until a page
	// is shorter than Limit.
	Since uint64
	// Tail: no since was given; the newest Limit events, oldest first.
	Tail bool
	// Limit is the page size, in [1, MaxAuditLimit]; DefaultAuditLimit
	// when the query has none.
	Limit int
}

// Audit page sizes: the default keeps an answer near 0.5 MB however long
// the journal; the cap keeps one request from decoding the whole journal.
const (
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 10_000
)
