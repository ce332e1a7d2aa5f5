package rollout

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ApplyRemote merges a document received from peer node `from` (gossip
// calls it): a rollout's, or a cell's manual weight (manual.go). When the
// remote version wins the merge it is journalled as-is (generation kept)
// with actor "peer:<from>", then its weights are applied to the cells it
// owns on the cell clock; it is not re-published, and ApplyRemote reports
// true (gossip relays such news on). A losing or identical document changes nothing and
// returns false, nil.
//
// Two different active rollouts over shared cells (started on two nodes at
// once) are settled the same way everywhere: the one created first (then
// the smaller id) stays; a local loser is aborted, a remote loser is refused
// with ErrConflict (its node aborts it when it hears of ours).
func (c *Controller) ApplyRemote(doc Document, from string) (bool, error) {
	if !validID(doc.ID) || doc.Generation == 0 {
		return false, fmt.Errorf("remote rollout %q from %s: needs an id and a generation: %w", doc.ID, from, ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, ErrClosed
	}
	if doc.Manual() {
		if err := validateManual(&doc, c.weights); err != nil {
			return false, fmt.Errorf("from %s: %w", from, err)
		}
	} else if err := doc.Plan.Validate(c.weights); err != nil {
		return false, fmt.Errorf("remote rollout %s from %s: %w", doc.ID, from, err)
	}
	local, err := c.localDocLocked(doc.ID)
	if err != nil {
		return false, err
	}
	if local.ID != "" && !remoteWins(local, doc) {
		return false, nil
	}
	actor := "peer:" + from
	if !doc.Status.Terminal() {
		if err := c.settleOverlapLocked(&doc, actor); err != nil {
			return false, err
		}
	}
	d := doc.clone()
	ev := Event{
		Time: c.now(), Actor: actor, Rollout: d.ID, Action: ActionPeer,
		Reason:  fmt.Sprintf("generation %d (%s) from %s", d.Generation, d.Status, from),
		Verdict: d.LastVerdict, Before: pick(c.weights, d.Plan.cells()),
	}
	if err := c.commitLocked(&change{doc: d, event: ev, remote: true}); err != nil {
		return false, err
	}
	return true, nil
}

// localDocLocked returns this node's version of a rollout (zero if none).
func (c *Controller) localDocLocked(id string) (Document, error) {
	if d, ok := c.active[id]; ok {
		return *d, nil
	}
	d, err := c.j.Document(id)
	if errors.Is(err, ErrNotFound) {
		return Document{}, nil
	}
	return d, err
}

// settleOverlapLocked resolves a remote active rollout sharing cells with a
// different local active one: the earlier-created one stays.
func (c *Controller) settleOverlapLocked(remote *Document, actor string) error {
	for _, id := range slices.Sorted(maps.Keys(c.active)) {
		loc := c.active[id]
		if id == remote.ID || len(overlap(&remote.Plan, &loc.Plan)) == 0 {
			continue
		}
		if !createdBefore(remote, loc) {
			return fmt.Errorf("remote rollout %s overlaps local rollout %s, which started first: %w", remote.ID, id, ErrConflict)
		}
		d, now := loc.clone(), c.now()
		d.Weights, d.Status, d.Ended = maps.Clone(d.W0), StatusAborted, now
		d.Reason = fmt.Sprintf("superseded by rollout %s, started earlier on a peer", remote.ID)
		if err := c.commitLocked(docChange(loc, d, ActionAbort, actor, d.Reason, nil, now)); err != nil {
			return err
		}
	}
	return nil
}

// createdBefore orders rival rollouts the same way on every node.
func createdBefore(a, b *Document) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.ID < b.ID
}
