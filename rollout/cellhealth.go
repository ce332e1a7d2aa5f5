package rollout

import (
	"fmt"
	"slices"
)

// Audit actions for a cell's health as one node sees it. They record a
// routing fact — the cell's users are served by their failover cells, or
// are back — not a weight change: no weight is touched.
const (
	ActionCellDown = "cell_down" // no endpoint of the cell is in rotation on the node
	ActionCellUp   = "cell_up"   // the cell has an endpoint in rotation again
)

// RecordCellHealth journals that cell went down or came back up on the
// node named actor ("health:<node>"), with reason. Each node decides from
// its own evidence, so each journals its own view.
func (c *Controller) RecordCellHealth(cell string, up bool, actor, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	action := ActionCellDown
	if up {
		action = ActionCellUp
	}
	if _, ok := c.weights[cell]; !ok {
		return fmt.Errorf("record %s of %q: %w", action, cell, ErrNotFound)
	}
	return c.commitLocked(&change{event: Event{Time: c.now(), Actor: actor, Action: action, Reason: reason}})
}

// ActiveTargets returns the target cells of the running rollouts, sorted
// and without repeats, from memory (no journal read): the node polls it to
// keep those cells out of failover.
func (c *Controller) ActiveTargets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.active {
		out = append(out, d.Plan.Targets...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
