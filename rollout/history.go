package rollout

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketHistory holds each rollout's downsampled traffic history (one JSON
// document per rollout id, written by the node's history sampler), so a
// rollout's charts and report can be drawn after the node's in-memory hour
// has passed, after a restart and after a handover.
var bucketHistory = []byte("history")

// PutHistory stores a rollout's history document (a JSON object), replacing
// the previous one.
func (c *Controller) PutHistory(id string, doc []byte) error {
	if !json.Valid(doc) {
		return errors.New("put history: not JSON")
	}
	return c.j.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketHistory)
		if err != nil {
			return fmt.Errorf("history bucket: %w", err)
		}
		return b.Put([]byte(id), doc)
	})
}

// History returns a rollout's stored history document, or nil when none
// was stored.
func (c *Controller) History(id string) ([]byte, error) {
	var out []byte
	err := c.j.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketHistory); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rollout %s history: %w", id, err)
	}
	return out, nil
}
