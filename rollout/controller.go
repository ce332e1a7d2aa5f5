package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Controller runs rollouts: the ticker judges and moves them, operators and
// peers act on them. It is safe for concurrent use.
//
// Locking: tickMu serialises ticks; mu guards the state and is held across
// each journal commit and the Apply/Publish that follow it, so the balancer
// sees weights in exactly the order the journal recorded them. The judge and
// webhooks are called without mu.
type Controller struct {
	opts    Options
	tuning  atomic.Pointer[Tuning] // opts' reloadable part; SetTuning replaces it
	retick  chan struct{}          // SetTuning changed the tick: run resets its ticker
	hooks   Hooks
	j       *Journal
	ownsJ   bool
	webhook func(ctx context.Context, url string, body []byte) error

	// retention is the audit retention in force (Options.AuditRetention
	// until a reload sets another).
	retention atomic.Pointer[Retention]

	tickMu sync.Mutex // serialises Tick: one judgement per rollout per tick

	// mu guards the fields below and orders commits with Apply and Publish.
	mu        sync.Mutex
	active    map[string]*Document // non-terminal rollouts by id; replaced whole, never edited in place
	weights   Weights              // every known cell's current weight
	owners    map[string]cellOwner // the change that last set each cell, on the cell clock (manual.go)
	unapplied bool                 // an Apply failed: re-send all weights on the next tick
	unrevert  bool                 // a failed Apply was a revert: re-send as one
	watching  map[string][]string  // what the Watch hook was last told
	closed    bool

	hookMu  sync.Mutex           // guards preStep
	preStep map[string]*hookCall // pre-step webhook calls by rollout id

	ctx     context.Context // cancelled by Close; bounds webhook calls and Run
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the ticker goroutine and webhook calls
	runOnce sync.Once
}

// Open opens the journal at path (failing fast, wrapping ErrLocked, when
// another process holds it) and returns a controller that owns it.
func Open(path string, opts Options, hooks Hooks) (*Controller, error) {
	opts = opts.withDefaults()
	j, err := openJournal(path, opts.LockTimeout, opts.NoSync)
	if err != nil {
		return nil, err
	}
	c, err := New(j, opts, hooks)
	if err != nil {
		j.Close()
		return nil, err
	}
	c.ownsJ = true
	return c, nil
}

// New returns a controller over an open journal and resumes its active
// rollouts from their last committed state: their weights (and every other
// weight the journal recorded) are re-applied at once. Close does not close
// a journal passed to New.
func New(j *Journal, opts Options, hooks Hooks) (*Controller, error) {
	c := &Controller{
		opts: opts.withDefaults(), hooks: hooks, j: j,
		active: map[string]*Document{}, weights: Weights{}, owners: map[string]cellOwner{},
		preStep: map[string]*hookCall{},
	}
	c.tuning.Store(tuningOf(c.opts))
	c.retick = make(chan struct{}, 1)
	c.webhook = hooks.Webhook
	c.SetAuditRetention(c.opts.AuditRetention)
	if c.webhook == nil {
		c.webhook = newWebhookClient().post
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := c.resume(); err != nil {
		c.cancel()
		return nil, fmt.Errorf("resume from journal %s: %w", j.Path(), err)
	}
	return c, nil
}

// resume loads the journal's documents and weights and re-applies them.
func (c *Controller) resume() error {
	docs, err := c.j.Documents()
	if err != nil {
		return err
	}
	for i := range docs {
		if !docs[i].Status.Terminal() {
			c.active[docs[i].ID] = &docs[i]
		}
	}
	journal, err := c.j.Cells()
	if err != nil {
		return err
	}
	maps.Copy(c.weights, c.opts.Cells)
	for cell, r := range journal {
		c.owners[cell] = cellOwner{Doc: r.Doc, Epoch: r.Epoch}
		if _, known := c.opts.Cells[cell]; known || c.opts.Cells == nil {
			c.weights[cell] = r.Weight
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyLocked(maps.Clone(c.weights), false)
	c.watchLocked()
	return nil
}

// watchLocked tells the Watch hook the targets of the active rollouts (with
// their baselines) when they changed since it was last told.
func (c *Controller) watchLocked() {
	if c.hooks.Watch == nil {
		return
	}
	w := map[string][]string{}
	for _, d := range c.active {
		for _, t := range d.Plan.Targets {
			w[t] = d.Plan.Baseline
		}
	}
	if c.watching != nil && maps.EqualFunc(w, c.watching, slices.Equal) {
		return
	}
	c.watching = w
	c.hooks.Watch(maps.Clone(w))
}

// Run starts the ticker, and the audit retention when one is set, in
// their own goroutines; they stop when ctx is done or Close is called. Calling Run more than once has no further effect.
func (c *Controller) Run(ctx context.Context) {
	c.runOnce.Do(func() {
		c.wg.Add(1)
		go c.run(ctx)
		c.wg.Add(1)
		go c.retain(ctx)
	})
}

// run ticks every opts.Tick, and reacts to alarms between ticks, until ctx
// or the controller is done.
func (c *Controller) run(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.tuning.Load().Tick)
	defer t.Stop()
	var lastReact time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		case <-c.retick:
			t.Reset(c.tuning.Load().Tick)
		case <-t.C:
			if err := c.Tick(c.now()); err != nil {
				c.opts.Logger.Error("rollout tick", "err", err)
			}
		case <-c.hooks.Alarm:
			if !c.waitGap(ctx, lastReact) {
				return
			}
			lastReact = time.Now()
			if err := c.React(c.now()); err != nil {
				c.opts.Logger.Error("rollout react", "err", err)
			}
		}
	}
}

// waitGap waits until ReactGap has passed since last; false when ctx or
// the controller ended meanwhile.
func (c *Controller) waitGap(ctx context.Context, last time.Time) bool {
	wait := c.opts.ReactGap - time.Since(last)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-c.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Close stops the ticker, waits for webhook calls in flight and closes the
// journal if Open opened it. Later actions fail with ErrClosed.
func (c *Controller) Close() error {
	c.cancel()
	c.wg.Wait()
	c.tickMu.Lock()
	defer c.tickMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.ownsJ {
		return c.j.Close()
	}
	return nil
}

func (c *Controller) now() time.Time {
	if c.hooks.Now != nil {
		return c.hooks.Now()
	}
	return time.Now()
}

func (c *Controller) isDecider() bool {
	return c.hooks.Decider == nil || c.hooks.Decider()
}

// newID names a rollout, avoiding ids already in the journal.
func (c *Controller) newIDLocked(p *Plan, now time.Time) (string, error) {
	for range 5 {
		var id string
		if c.opts.NewID != nil {
			id = c.opts.NewID(p, now)
		} else {
			var b [2]byte
			_, _ = rand.Read(b[:])
			id = p.Name + "-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
		}
		if !validID(id) {
			return "", fmt.Errorf("rollout id %q from NewID is not a valid id: %w", id, ErrInvalid)
		}
		if _, err := c.j.Document(id); err != nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("no unused rollout id for plan %s after 5 tries: %w", p.Name, ErrConflict)
}

// idRE keeps rollout ids safe in URLs and journal keys (which use a 0 byte
// as a separator).
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validID(id string) bool { return idRE.MatchString(id) }

// change is one decision, committed by commitLocked.
type change struct {
	doc     *Document // the rollout's new version; nil for a change outside rollouts
	event   Event
	apply   Weights // weights to set, for a change outside rollouts (docs: derived)
	notify  string  // a notification webhook to call after the commit
	publish bool    // hand the document to gossip
	remote  bool    // doc is a peer's version (ApplyRemote): it sets only the cells it owns
}

// docChange describes the move from prev to next (a modified clone) as one
// decision: next's generation and time are set, and the event filled in.
func docChange(prev, next *Document, action, actor, reason string, v *Verdict, now time.Time) *change {
	next.Generation = prev.Generation + 1
	next.Updated = now
	if v != nil {
		vv := *v
		next.LastVerdict = &vv
	}
	return &change{
		doc:     next,
		publish: true,
		event: Event{
			Time: now, Actor: actor, Rollout: next.ID, Action: action, Reason: reason,
			Verdict: v, Before: maps.Clone(prev.Weights),
		},
	}
}

// commitLocked journals ch (one bbolt transaction), then updates memory, then
// tells the balancer, gossip and the Committed hook, in that order.
func (c *Controller) commitLocked(ch *change) error {
	if c.closed {
		return ErrClosed
	}
	ev := &ch.event
	set, owners := ch.apply, map[string]cellOwner{}
	r := record{events: []Event{*ev}}
	if d := ch.doc; d != nil {
		set = c.docCellsLocked(ch, owners)
		r.doc = d
		ev.Status, ev.Step, ev.StepPercent, ev.Generation = d.Status, d.Step+1, d.stepPercent(), d.Generation
		ev.After = maps.Clone(d.Weights)
		if ch.remote {
			ev.After = maps.Clone(set)
		}
		if d.Manual() {
			// A cell's manual weight is no rollout: no release record, and
			// its events are loose audit entries (no rollout index, so audit
			// retention treats them like any change outside rollouts).
			ev.Rollout = ""
		} else {
			r.release = releaseOf(d)
		}
		r.events[0] = *ev
	}
	r.cells = make(map[string]CellRecord, len(set))
	for cell, w := range set {
		o, ok := owners[cell]
		if !ok {
			o = c.owners[cell] // a change outside documents keeps the cell's place on the clock
		}
		r.cells[cell] = CellRecord{Weight: w, Doc: o.Doc, Epoch: o.Epoch}
	}
	changed := changedWeights(c.weights, set)
	evs, err := c.j.commit(r)
	if err != nil {
		return err
	}
	if d := ch.doc; d != nil {
		if d.Status.Terminal() {
			delete(c.active, d.ID)
			c.dropPreStep(d.ID)
		} else {
			c.active[d.ID] = d
		}
	}
	maps.Copy(c.weights, set)
	maps.Copy(c.owners, owners)
	c.watchLocked()
	if c.hooks.Committed != nil {
		for _, e := range evs {
			c.hooks.Committed(e)
		}
	}
	c.applyLocked(changed, ch.doc != nil && reverted(ch.doc.Status))
	if ch.publish && ch.doc != nil && c.hooks.Publish != nil {
		c.hooks.Publish(*ch.doc.clone())
	}
	if ch.notify != "" && ch.doc != nil {
		c.notify(ch.notify, evs[0].Action, ch.doc.clone())
	}
	return nil
}

// docCellsLocked returns the weights a document change sets and fills
// owners with the cells' new place on the cell clock (manual.go): a local
// version gets the next epoch and sets all its cells; a peer's version
// sets only the cells it owns here.
func (c *Controller) docCellsLocked(ch *change, owners map[string]cellOwner) Weights {
	d := ch.doc
	var cells []string
	if ch.remote {
		cells = c.ownedCellsLocked(d)
	} else {
		d.Epoch = c.nextEpochLocked(d)
		for cell := range d.Weights {
			cells = append(cells, cell)
		}
	}
	set := make(Weights, len(cells))
	for _, cell := range cells {
		set[cell] = d.Weights[cell]
		e := d.Epoch
		if o := c.owners[cell]; o.Doc == d.ID {
			e = max(e, o.Epoch) // the cell clock never goes back
		}
		owners[cell] = cellOwner{Doc: d.ID, Epoch: e}
	}
	return set
}

// applyLocked sends weights to the balancer; a failure marks everything to
// be re-sent on the next tick (the journal already holds the truth).
func (c *Controller) applyLocked(w Weights, revert bool) {
	if len(w) == 0 || c.hooks.Apply == nil {
		return
	}
	if err := c.hooks.Apply(maps.Clone(w), revert); err != nil {
		c.unapplied = true
		c.unrevert = c.unrevert || revert
		c.opts.Logger.Error("rollout apply weights", "err", err, "revert", revert)
	}
}

// reapplyLocked re-sends every weight after a failed Apply.
func (c *Controller) reapplyLocked() {
	revert := c.unrevert
	c.unapplied, c.unrevert = false, false
	c.applyLocked(maps.Clone(c.weights), revert)
}

// changedWeights returns the cells of next whose weight differs from cur.
func changedWeights(cur, next Weights) Weights {
	out := Weights{}
	for cell, w := range next {
		if old, ok := cur[cell]; !ok || math.Abs(old-w) > weightEpsilon {
			out[cell] = w
		}
	}
	return out
}

// releaseOf is the release catalog entry a document implies.
func releaseOf(d *Document) *ReleaseRecord {
	r := &ReleaseRecord{
		Rollout: d.ID, Version: d.Plan.Release.Version, Plan: d.Plan.Name, Notes: d.Plan.Release.Notes,
		Start: d.Created, End: d.Ended, Outcome: d.Status,
	}
	if d.LastVerdict != nil {
		v := *d.LastVerdict
		r.Verdict = &v
	}
	return r
}
