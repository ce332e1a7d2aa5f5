package rollout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Journal layout: one bbolt file, six buckets.
//
//	meta              "schema" → "1"
//	rollouts          rollout id → Document (JSON), the current version
//	audit             seq (8-byte big-endian) → Event (JSON), append-only
//	audit_by_rollout  rollout id + 0x00 + seq → empty, an index for decisions
//	releases          rollout id → ReleaseRecord (JSON)
//	cells             cell name → CellRecord (JSON): last committed weight and
//	                  the change that set it (older journals: a bare number)
var (
	bucketMeta      = []byte("meta")
	bucketRollouts  = []byte("rollouts")
	bucketAudit     = []byte("audit")
	bucketByRollout = []byte("audit_by_rollout")
	bucketReleases  = []byte("releases")
	bucketCells     = []byte("cells")
	allBuckets      = [][]byte{bucketMeta, bucketRollouts, bucketAudit, bucketByRollout, bucketReleases, bucketCells, bucketHistory}
)

// schemaVersion is written on create and checked on open, so a future
// layout change is detected instead of misread.
const schemaVersion = "1"

// auditFill is the audit bucket's page fill on split. Its keys only ever
// grow, so pages split at bbolt's default 50 % would stay half empty for
// ever; filled to 95 % the file is about half as large.
const auditFill = 0.95

// DefaultLockTimeout is how long OpenJournal waits for another process to
// release the file: long enough to ride over a restart's overlap, short
// enough that a second node on the same file fails before anyone waits.
const DefaultLockTimeout = time.Second

// Journal is the durable record of rollouts. All methods are safe for
// concurrent use (bbolt serialises writers and lets readers run beside them).
type Journal struct {
	db   *bolt.DB
	path string
	// grown receives a signal (never blocking) every retainKickEvery
	// events, so audit retention keeps up with a burst of changes.
	grown chan struct{}
}

// OpenJournal opens (or creates) the journal file, waiting at most
// lockTimeout (0: DefaultLockTimeout) for its lock. When another process
// holds it the error wraps ErrLocked.
func OpenJournal(path string, lockTimeout time.Duration) (*Journal, error) {
	return openJournal(path, lockTimeout, false)
}

func openJournal(path string, lockTimeout time.Duration, noSync bool) (*Journal, error) {
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	db, err := openBolt(path, &bolt.Options{Timeout: lockTimeout, NoSync: noSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open journal %s: still locked after %s, is another cellgate using this state.path? %w", path, lockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w%s", path, err, recoveryHint(err))
	}
	j := &Journal{db: db, path: path, grown: make(chan struct{}, 1)}
	if err := j.update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w%s", path, err, recoveryHint(err))
	}
	return j, nil
}

// openBolt opens a bbolt file after checking its meta pages (preflight),
// then runs bbolt's consistency check over it: a damaged journal is refused
// with ErrDamaged, never a panic, a fault or a silent fallback.
func openBolt(path string, o *bolt.Options) (*bolt.DB, error) {
	if err := preflight(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := guard("open", func() (err error) {
		db, err = bolt.Open(path, 0o600, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := verify(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// recoveryHint points an operator at the recovery path when err is damage.
func recoveryHint(err error) string {
	if !errors.Is(err, ErrDamaged) {
		return ""
	}
	return " (the node will not start on it: run `cellgate journal check` for details; `cellgate journal export` salvages what is readable; see docs/CONTRACT.md, \"Journal recovery\")"
}

// view and update run a bbolt transaction under guard: a page bbolt cannot
// make sense of fails the call with ErrDamaged instead of panicking.
func (j *Journal) view(fn func(*bolt.Tx) error) error {
	return guard("read journal", func() error { return j.db.View(fn) })
}

func (j *Journal) update(fn func(*bolt.Tx) error) error {
	return guard("write journal", func() error { return j.db.Update(fn) })
}

// initBuckets creates missing buckets and checks the schema version.
func initBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get([]byte("schema")); {
	case v == nil:
		return meta.Put([]byte("schema"), []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("journal schema %q, this build reads %q", v, schemaVersion)
	}
	return nil
}

// Close closes the file and releases its lock.
func (j *Journal) Close() error { return j.db.Close() }

// Path is the file the journal lives in.
func (j *Journal) Path() string { return j.path }

// record is everything one decision writes, committed in one transaction.
type record struct {
	doc     *Document             // the rollout's new version (nil: a change outside rollouts)
	events  []Event               // appended to the audit log; Seq is assigned here
	release *ReleaseRecord        // the catalog entry's new version, if it changed
	cells   map[string]CellRecord // cells whose weight (or place on the cell clock) this decision sets
}

// commit writes r in one bbolt transaction (fsynced when it returns) and
// returns the events with their sequence numbers. Nothing is written when
// it fails, sequence numbers included.
func (j *Journal) commit(r record) ([]Event, error) {
	evs := append([]Event(nil), r.events...)
	err := j.update(func(tx *bolt.Tx) error {
		if r.doc != nil {
			if err := putJSON(tx.Bucket(bucketRollouts), []byte(r.doc.ID), r.doc); err != nil {
				return err
			}
		}
		if r.release != nil {
			if err := putJSON(tx.Bucket(bucketReleases), []byte(r.release.Rollout), r.release); err != nil {
				return err
			}
		}
		for c, w := range r.cells {
			if err := putJSON(tx.Bucket(bucketCells), []byte(c), w); err != nil {
				return err
			}
		}
		for i := range evs {
			if err := appendEvent(tx, &evs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit to journal: %w", err)
	}
	for _, ev := range evs {
		if ev.Seq%retainKickEvery == 0 {
			select {
			case j.grown <- struct{}{}:
			default:
			}
		}
	}
	return evs, nil
}

// appendEvent assigns ev the next sequence number and stores it and its index entry.
func appendEvent(tx *bolt.Tx, ev *Event) error {
	audit := tx.Bucket(bucketAudit)
	audit.FillPercent = auditFill
	seq, err := audit.NextSequence()
	if err != nil {
		return fmt.Errorf("next audit seq: %w", err)
	}
	ev.Seq = seq
	if err := putJSON(audit, seqKey(seq), ev); err != nil {
		return err
	}
	if ev.Rollout == "" {
		return nil
	}
	return tx.Bucket(bucketByRollout).Put(indexKey(ev.Rollout, seq), nil)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func indexKey(id string, seq uint64) []byte {
	k := append([]byte(id), 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Documents returns every rollout document, active and finished.
func (j *Journal) Documents() ([]Document, error) {
	var out []Document
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			var d Document
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode rollout %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Document returns one rollout document, or an error wrapping ErrNotFound.
func (j *Journal) Document(id string) (Document, error) {
	var d Document
	err := j.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRollouts).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("rollout %q: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// Audit returns events with seq > since, oldest first, at most limit of them
// (limit <= 0: all).
func (j *Journal) Audit(since uint64, limit int) ([]Event, error) {
	var out []Event
	err := j.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(seqKey(since + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				return nil
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// AuditTail returns the newest limit events, oldest first (newest last).
func (j *Journal) AuditTail(limit int) ([]Event, error) {
	var out []Event
	err := j.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}

// RolloutEvents returns the audit events of one rollout, oldest first.
func (j *Journal) RolloutEvents(id string) ([]Event, error) {
	var out []Event
	prefix := append([]byte(id), 0)
	err := j.view(func(tx *bolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		c := tx.Bucket(bucketByRollout).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := audit.Get(k[len(prefix):])
			if v == nil {
				return fmt.Errorf("audit index of %s names a missing event", id)
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event: %w", err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Releases returns the release catalog, in rollout id order.
func (j *Journal) Releases() ([]ReleaseRecord, error) {
	var out []ReleaseRecord
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReleases).ForEach(func(k, v []byte) error {
			var r ReleaseRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode release %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// CellWeights returns the last committed weight of every cell a decision touched.
func (j *Journal) CellWeights() (Weights, error) {
	cells, err := j.Cells()
	out := make(Weights, len(cells))
	for c, r := range cells {
		out[c] = r.Weight
	}
	return out, err
}

// Cells returns the record of every cell a decision touched. A record
// written before the cell clock existed (a bare weight) reads as epoch 0.
func (j *Journal) Cells() (map[string]CellRecord, error) {
	out := map[string]CellRecord{}
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCells).ForEach(func(k, v []byte) error {
			r, err := decodeCellRecord(v)
			if err != nil {
				return fmt.Errorf("decode weight of %s: %w", k, err)
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}

// decodeCellRecord reads a cells bucket value: a CellRecord, or a bare
// weight as journals written before the cell clock hold.
func decodeCellRecord(v []byte) (CellRecord, error) {
	var r CellRecord
	if err := json.Unmarshal(v, &r.Weight); err == nil {
		return r, nil
	}
	err := json.Unmarshal(v, &r)
	return r, err
}
