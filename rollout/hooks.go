package rollout

import (
	"context"
	"log/slog"
	"time"
)

// Hooks connect the controller to the judge, the balancer and the cluster.
// Every field is optional; its comment says what nil means. Apply, Publish
// and Committed are called with the controller's lock held, in commit order:
// they must be quick, must not block and must not call back into the
// Controller. Maps passed to them are the callee's to keep.
type Hooks struct {
	// Judge evaluates the plan's targets against its baseline over requests
	// since `since` (the start of the current step, or of its bake once the
	// step's weights are reached). It is called without the lock, once per
	// active rollout per tick. Nil: every tick is "inconclusive", so plans
	// never promote by themselves (operators still can).
	Judge func(p *Plan, since, now time.Time) Verdict
	// Apply publishes weights (cell name → weight; only the cells it names
	// change) to the balancer. revert says the change undoes a rollout (a
	// rollback or an abort, this node's or a peer's), so the balancer need
	// not infer it from the weights (session pins to the cells that lose
	// share are dropped at once). It is called only after the decision is
	// committed to the journal. If it returns an error, all weights are
	// re-sent on the next tick, as a revert if any unapplied change was one.
	// Nil: nothing to apply (tests, dry runs).
	Apply func(weights map[string]float64, revert bool) error
	// Publish hands a rollout's new document to gossip after each local
	// change (not after ApplyRemote). Nil: single node.
	Publish func(doc Document)
	// Now is the clock. Nil: time.Now. Tests inject a fake clock and call
	// Tick directly.
	Now func() time.Time
	// Webhook performs one HTTP hook call with body as the JSON payload; ctx
	// carries the plan's timeout. A non-nil error (including a non-2xx
	// answer) fails the hook. Nil: an HTTP POST with net/http.
	Webhook func(ctx context.Context, url string, body []byte) error
	// Decider reports whether this node may promote (the alive member with
	// the lowest name). Reverts and holds never ask. Nil: always true.
	Decider func() bool
	// Committed is told of each audit event once it is durable, with its
	// sequence number (metrics, event streams, the crash test). Nil: nobody.
	Committed func(ev Event)
	// Alarm receives when evidence against a watched cell arrives between
	// ticks (the recording path signals; it never judges). Run then calls
	// React at once: every active rollout is judged and those failing are
	// reverted without waiting for the tick. Nil: ticks only.
	Alarm <-chan struct{}
	// Watch is told which cells to watch whenever the set changes (with
	// the lock held, like Apply; it must be quick): each target of an
	// active rollout, with that rollout's baseline. Nil: nobody watches.
	Watch func(targets map[string][]string)
}

// Options are the controller's settings; zero fields take DefaultOptions'.
type Options struct {
	// Cells are the known cells and their configured weights. The journal's
	// last committed weights override them on open for cells it has touched,
	// so a restart never undoes a promotion or a revert.
	Cells map[string]float64
	// Tick is how often Run ticks (rollout.tick).
	Tick time.Duration
	// DegradedTicks is how many consecutive degraded verdicts revert a plan
	// (rollout.degraded_ticks).
	DegradedTicks int
	// MaxStepPerTick caps any cell's weight change per tick, in percent of the
	// plan's total weight, for plans that set none (rollout.max_step_per_tick).
	// 100 or more means no cap.
	MaxStepPerTick float64
	// ReactGap is the least time between two reactions to alarms (React),
	// so a flood of bad requests costs at most one judgement per gap.
	ReactGap time.Duration
	// LockTimeout bounds the wait for the journal file's lock (Open only).
	LockTimeout time.Duration
	// NoSync skips fsync on journal commits (Open only). A commit then
	// survives a process crash but not a power loss: for tests and the demo,
	// never for a real node.
	NoSync bool
	// NewID names a new rollout. Nil: plan name, UTC start time and 4 random hex digits.
	NewID func(p *Plan, now time.Time) string
	// AuditRetention bounds the audit log (state.audit_retention); Run
	// applies it at once and every minute; SetAuditRetention changes it.
	// Zero: keep everything.
	AuditRetention Retention
	// Logger receives what the controller cannot return (failed Apply, notification webhooks, ticker errors). Nil: discarded.
	Logger *slog.Logger
}

// DefaultOptions returns the settings used for zero fields, each with why.
func DefaultOptions() Options {
	return Options{
		// Tick: the contract's rollout.tick default; a revert lands within one tick of a failing verdict.
		Tick: time.Second,
		// DegradedTicks: one noisy tick never reverts, three in a row do (≈3 s at the default tick).
		DegradedTicks: 3,
		// MaxStepPerTick: a 0 → 100 switch takes four ticks, so the judge sees a slice before the whole.
		MaxStepPerTick: 25,
		// ReactGap: ≤ 100 alarm judgements a second (a judgement costs
		// ~0.1 ms), at most one more canary request at 100 req/s.
		ReactGap: 10 * time.Millisecond,
		// LockTimeout: see DefaultLockTimeout.
		LockTimeout: DefaultLockTimeout,
	}
}

// withDefaults fills zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Tick <= 0 {
		o.Tick = d.Tick
	}
	if o.DegradedTicks <= 0 {
		o.DegradedTicks = d.DegradedTicks
	}
	if o.MaxStepPerTick <= 0 {
		o.MaxStepPerTick = d.MaxStepPerTick
	}
	if o.ReactGap <= 0 {
		o.ReactGap = d.ReactGap
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = d.LockTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ensure the default webhook has the same shape as the hook.
var _ func(context.Context, string, []byte) error = (*webhookClient)(nil).post
