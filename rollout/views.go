package rollout

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Rollouts returns every rollout the journal knows, newest first, without
// their decisions (GET /v1/rollouts). Manual-weight documents are not
// rollouts and are left out.
func (c *Controller) Rollouts() ([]RolloutView, error) {
	docs, err := c.j.Documents()
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	docs = slices.DeleteFunc(docs, func(d Document) bool { return d.Manual() })
	slices.SortFunc(docs, func(a, b Document) int {
		if n := b.Created.Compare(a.Created); n != 0 {
			return n
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := make([]RolloutView, len(docs))
	for i := range docs {
		out[i] = docs[i].view()
	}
	return out, nil
}

// Rollout returns one rollout with its decisions, oldest first
// (GET /v1/rollouts/{id}); an unknown id wraps ErrNotFound.
func (c *Controller) Rollout(id string) (RolloutView, error) {
	d, err := c.j.Document(id)
	if err != nil {
		return RolloutView{}, err
	}
	evs, err := c.j.RolloutEvents(id)
	if err != nil {
		return RolloutView{}, fmt.Errorf("rollout %s decisions: %w", id, err)
	}
	v := d.view()
	v.Decisions = evs
	return v, nil
}

// Active returns the ids of the rollouts that are not finished.
func (c *Controller) Active() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.active))
}

// Audit returns the audit events after sinceSeq, oldest first (newest
// last), at most limit (<= 0: all) (GET /v1/audit).
func (c *Controller) Audit(sinceSeq uint64, limit int) ([]Event, error) {
	return c.j.Audit(sinceSeq, limit)
}

// AuditTail returns the newest limit audit events, oldest first.
func (c *Controller) AuditTail(limit int) ([]Event, error) { return c.j.AuditTail(limit) }

// Releases returns the release catalog.
func (c *Controller) Releases() ([]ReleaseRecord, error) {
	return c.j.Releases()
}

// Weights returns every known cell's current weight (a copy).
func (c *Controller) Weights() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.weights)
}

// Documents returns every document the journal holds — rollouts, finished
// ones included, and cells' manual weights (gossip's full-state exchange).
func (c *Controller) Documents() ([]Document, error) {
	return c.j.Documents()
}
