package rollout

import (
	"fmt"
	"math"
	"time"
)

// Manual weights and the cell clock.
//
// A weight set by hand on a cell that no rollout holds is a Document too:
// one per cell (id "manual-<cell>", Plan.Strategy "manual", always in the
// terminal status promoted), whose generation grows with every manual
// change of that cell. It is journalled, published through Hooks.Publish
// and merged by ApplyRemote exactly like a rollout's document, so the
// fleet replicates one kind of state with one merge rule, and a restarted
// node knows from its journal which versions it already has. (A manual
// change on a cell under a rollout changes that rollout's document, as
// SetWeight says; nothing else is sent.)
//
// Generations order the versions of one document. Changes to one cell made
// by different documents — a manual weight, then a rollout over the cell,
// then another manual weight — are ordered by the cell clock: every
// locally committed version carries Epoch, one more than the highest epoch
// of the changes that last set any of its cells on this node, and the
// journal keeps, per cell, the epoch and document of the change that set
// it. A peer's document sets a cell only if it is that cell's current
// document (its own merge rule decided) or is later on the cell clock
// (higher epoch, then the larger id): so a node that missed a change, or
// restarted, never lets an older document's weights undo a newer one's,
// whatever the order in which documents arrive.

// StrategyManual marks the document of a cell's manual weight.
const StrategyManual = "manual"

// manualPrefix starts every manual document's id.
const manualPrefix = "manual-"

// Manual reports whether d is a cell's manual-weight document rather than
// a rollout.
func (d *Document) Manual() bool { return d.Plan.Strategy == StrategyManual }

// cellOwner is the change that last set a cell: its document (empty for a
// config reload or a weight never changed) and that change's epoch.
type cellOwner struct {
	Doc   string `json:"doc,omitempty"`
	Epoch uint64 `json:"epoch,omitempty"`
}

// laterThan reports whether a change by document id at epoch e is later on
// the cell clock than o.
func (o cellOwner) laterThan(other cellOwner) bool {
	if o.Epoch != other.Epoch {
		return o.Epoch > other.Epoch
	}
	return o.Doc > other.Doc
}

// nextEpochLocked is the epoch of a new local version of d: later than
// every change that set one of its cells, and than d's previous version.
func (c *Controller) nextEpochLocked(d *Document) uint64 {
	e := d.Epoch
	for cell := range d.Weights {
		e = max(e, c.owners[cell].Epoch)
	}
	return e + 1
}

// ownedCellsLocked returns the cells of a peer's document d that it may
// set here: those whose current document is d, and those where d is later
// on the cell clock.
func (c *Controller) ownedCellsLocked(d *Document) []string {
	var out []string
	self := cellOwner{Doc: d.ID, Epoch: d.Epoch}
	for cell := range d.Weights {
		if _, known := c.weights[cell]; !known {
			continue
		}
		if o := c.owners[cell]; o.Doc == d.ID || self.laterThan(o) {
			out = append(out, cell)
		}
	}
	return out
}

// setManualLocked journals a manual weight on a cell no rollout holds, as
// the next version of the cell's manual document.
func (c *Controller) setManualLocked(cell string, old, w float64, actor, why string, now time.Time) error {
	id := manualPrefix + cell
	if !validID(id) {
		return fmt.Errorf("set weight of %q: cell name too long for a journal id: %w", cell, ErrInvalid)
	}
	prev, err := c.localDocLocked(id)
	if err != nil {
		return err
	}
	if prev.ID == "" {
		prev = Document{ID: id, Plan: Plan{Name: "manual", Strategy: StrategyManual, Targets: []string{cell}}, Created: now, Step: -1, LastHealthyStep: -1, ApprovedStep: -1}
	}
	d := prev.clone()
	d.Status, d.Weights, d.W0, d.Reason, d.Ended = StatusPromoted, Weights{cell: w}, Weights{cell: old}, why, now
	ch := docChange(&prev, d, ActionSetWeight, actor, why, nil, now)
	ch.event.Before = Weights{cell: old}
	return c.commitLocked(ch)
}

// validateManual checks a peer's manual document: one known cell, one
// finite weight >= 0.
func validateManual(d *Document, known Weights) error {
	if len(d.Plan.Targets) != 1 || d.ID != manualPrefix+d.Plan.Targets[0] || len(d.Weights) != 1 {
		return fmt.Errorf("manual weight document %s: want one cell named by its id: %w", d.ID, ErrInvalid)
	}
	cell := d.Plan.Targets[0]
	if _, ok := known[cell]; !ok {
		return fmt.Errorf("manual weight document %s: cell %q: %w", d.ID, cell, ErrNotFound)
	}
	if w, ok := d.Weights[cell]; !ok || math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		return fmt.Errorf("manual weight document %s: weight must be a finite number >= 0: %w", d.ID, ErrInvalid)
	}
	return nil
}

// CellRecord is what the journal keeps per cell: its last committed weight
// and the change that set it on the cell clock.
type CellRecord struct {
	Weight float64 `json:"weight"`
	Doc    string  `json:"doc,omitempty"`
	Epoch  uint64  `json:"epoch,omitempty"`
}
