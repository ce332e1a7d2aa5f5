package rollout

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention bounds the audit log (state.audit_retention). An event is out
// of retention once it is older than MaxAge or not among the newest
// MaxEvents; zero turns a bound off. Out of retention is not enough to be
// dropped: events of a rollout that is still running are kept, and a
// finished rollout's events go together, only once its last one is out of
// retention (a cell's manual-weight document is not a rollout: each of its
// changes goes on its own), so a rollout's decisions (GET /v1/rollouts/{id}, its report)
// are either whole or gone. Rollout documents and release records are
// never dropped: they are one entry per rollout.
type Retention struct {
	MaxAge    time.Duration
	MaxEvents int
}

func (r Retention) off() bool { return r.MaxAge <= 0 && r.MaxEvents <= 0 }

const (
	// retainEvery is how often the controller applies retention: often
	// enough that a burst of manual changes overshoots by minutes of
	// events, not days.
	retainEvery = time.Minute
	// retainKickEvery is how many new events also trigger a pass.
	retainKickEvery = 1000
	// pruneBatch bounds the deletions per write transaction, so pruning a
	// large backlog never holds the journal's writer lock for long.
	pruneBatch = 5000
)

// retain applies the audit retention now, every retainEvery and every
// retainKickEvery events, until ctx or the controller is done.
func (c *Controller) retain(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(retainEvery)
	defer t.Stop()
	for {
		n, err := c.j.PruneAudit(*c.retention.Load(), c.now())
		if err != nil {
			c.opts.Logger.Error("audit retention", "err", err)
		} else if n > 0 {
			c.opts.Logger.Info("audit retention dropped old events", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.j.grown:
		}
	}
}

// SetAuditRetention changes the audit retention (a config reload); the
// next pass, within a minute, applies it.
func (c *Controller) SetAuditRetention(r Retention) { c.retention.Store(&r) }

// AuditRetention is the audit retention in force.
func (c *Controller) AuditRetention() Retention { return *c.retention.Load() }

// auditHead is the part of an event retention looks at.
type auditHead struct {
	Time    time.Time `json:"time"`
	Rollout string    `json:"rollout"`
}

// PruneAudit drops the audit events out of retention r at now (see
// Retention for what is kept regardless) and returns how many it dropped.
func (j *Journal) PruneAudit(r Retention, now time.Time) (int, error) {
	if r.off() {
		return 0, nil
	}
	type victim struct {
		seq     uint64
		rollout string
	}
	var victims []victim
	err := j.view(func(tx *bolt.Tx) error {
		cutoff, err := pruneCutoff(tx.Bucket(bucketAudit), r, now)
		if err != nil || cutoff == 0 {
			return err
		}
		keep, err := keptRollouts(tx, cutoff)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cutoff; k, v = c.Next() {
			var h auditHead
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if h.Rollout == "" || !keep[h.Rollout] {
				victims = append(victims, victim{binary.BigEndian.Uint64(k), h.Rollout})
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	dropped := 0
	for len(victims) > 0 {
		batch := victims[:min(pruneBatch, len(victims))]
		victims = victims[len(batch):]
		err := j.update(func(tx *bolt.Tx) error {
			audit, index := tx.Bucket(bucketAudit), tx.Bucket(bucketByRollout)
			for _, v := range batch {
				if err := audit.Delete(seqKey(v.seq)); err != nil {
					return err
				}
				if v.rollout != "" {
					if err := index.Delete(indexKey(v.rollout, v.seq)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return dropped, fmt.Errorf("audit retention: %w", err)
		}
		dropped += len(batch)
	}
	return dropped, nil
}

// pruneCutoff returns the highest sequence number out of retention (0:
// none): the newest MaxEvents are kept by number, and events are in time
// order, so the age bound ends at the first event young enough.
func pruneCutoff(audit *bolt.Bucket, r Retention, now time.Time) (uint64, error) {
	c := audit.Cursor()
	first, _ := c.First()
	last, _ := c.Last()
	if first == nil {
		return 0, nil
	}
	var cutoff uint64
	if lastSeq := binary.BigEndian.Uint64(last); r.MaxEvents > 0 && lastSeq > uint64(r.MaxEvents) {
		cutoff = lastSeq - uint64(r.MaxEvents)
	}
	if r.MaxAge > 0 {
		old := now.Add(-r.MaxAge)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var h auditHead
			if err := json.Unmarshal(v, &h); err != nil {
				return 0, fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !h.Time.Before(old) {
				break
			}
			cutoff = max(cutoff, binary.BigEndian.Uint64(k))
		}
	}
	if cutoff < binary.BigEndian.Uint64(first) {
		return 0, nil
	}
	return cutoff, nil
}

// keptRollouts returns the rollouts whose events stay even where they are
// out of retention: those still running, and finished ones with an event
// after cutoff.
func keptRollouts(tx *bolt.Tx, cutoff uint64) (map[string]bool, error) {
	keep := map[string]bool{}
	index := tx.Bucket(bucketByRollout).Cursor()
	err := tx.Bucket(bucketRollouts).ForEach(func(id, v []byte) error {
		var d struct {
			Status Status `json:"status"`
			Plan   struct {
				Strategy string `json:"strategy"`
			} `json:"plan"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode rollout %s: %w", id, err)
		}
		if d.Plan.Strategy == StrategyManual {
			return nil // a cell's manual weights: each change ages on its own
		}
		if !d.Status.Terminal() {
			keep[string(id)] = true
			return nil
		}
		// The rollout's newest index key sorts just before id ‖ 0x01.
		var k []byte
		if next, _ := index.Seek(append([]byte(id), 1)); next != nil {
			k, _ = index.Prev()
		} else {
			k, _ = index.Last()
		}
		prefix := append([]byte(id), 0)
		if k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix) &&
			binary.BigEndian.Uint64(k[len(prefix):]) > cutoff {
			keep[string(id)] = true
		}
		return nil
	})
	return keep, err
}
