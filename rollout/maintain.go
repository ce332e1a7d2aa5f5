package rollout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Offline journal maintenance: `cellgate journal check|export|compact`.
// Each opens the file read-only, so it fails fast (ErrLocked) while a node
// holds it, and reads it under guard, so a damaged page becomes a reported
// problem, not a crash. See docs/CONTRACT.md, "Journal recovery".

// maintLockTimeout is how long the tools wait for a node to let go.
const maintLockTimeout = time.Second

// CheckReport is what CheckJournal found.
type CheckReport struct {
	Path     string         `json:"path"`
	Size     int64          `json:"size_bytes"`
	Entries  map[string]int `json:"entries"` // bucket → readable entries
	Took     time.Duration  `json:"took_ns"` // the whole check
	Problems []string       `json:"problems,omitempty"`
}

// OK reports whether the check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// CheckJournal verifies the journal at path as a node does at open (meta
// pages, bbolt's consistency check) and further decodes every entry of
// every bucket. It returns an error only when the file cannot be examined
// at all; damage is listed in the report's Problems.
func CheckJournal(path string) (*CheckReport, error) {
	start := time.Now()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("check journal: %w", err)
	}
	r := &CheckReport{Path: path, Size: st.Size(), Entries: map[string]int{}}
	defer func() { r.Took = time.Since(start) }()
	if err := preflight(path); err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
	db, err := openReadOnly(path)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r, lockedOr(err, nil)
	}
	defer db.Close()
	if len(r.Problems) == 0 { // a truncated file would only fault again
		if err := verify(db); err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
	}
	audit := map[string]bool{}
	r.Problems = append(r.Problems, walkBuckets(db, func(bucket string, k, v []byte) error {
		if err := decodeEntry(bucket, k, v, audit); err != nil {
			return err
		}
		r.Entries[bucket]++
		return nil
	})...)
	return r, nil
}

// lockedOr returns err when it is ErrLocked (the caller should stop the
// node first), else fallback.
func lockedOr(err, fallback error) error {
	if errors.Is(err, ErrLocked) {
		return err
	}
	return fallback
}

// openReadOnly opens path read-only without the preflight check, for the
// tools that must read damaged files. bbolt loads no freelist read-only,
// so a truncated file opens; reads past its end fault under guard.
func openReadOnly(path string) (*bolt.DB, error) {
	var db *bolt.DB
	err := guard("open read-only", func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: maintLockTimeout})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("journal %s is held by a running node; stop it first: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return db, nil
}

// walkBuckets calls fn for every entry of every journal bucket, in key
// order, each bucket in its own guarded transaction, and returns what it
// could not read: an entry fn refuses is skipped, a fault ends its bucket.
func walkBuckets(db *bolt.DB, fn func(bucket string, k, v []byte) error) []string {
	var problems []string
	for _, name := range allBuckets {
		err := guard("read bucket "+string(name), func() error {
			return db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(name)
				if b == nil && bytes.Equal(name, bucketHistory) {
					return nil // journals written before the history bucket existed
				}
				if b == nil {
					return fmt.Errorf("bucket %s missing", name)
				}
				return b.ForEach(func(k, v []byte) error {
					if err := fn(string(name), k, v); err != nil {
						problems = append(problems, fmt.Sprintf("%s %s: %v", name, keyString(name, k), err))
					}
					return nil
				})
			})
		})
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// decodeEntry checks that one entry decodes as its bucket's type. audit
// collects the event keys seen, for the index check (the audit bucket is
// walked before its index).
func decodeEntry(bucket string, k, v []byte, audit map[string]bool) error {
	var target any
	switch bucket {
	case string(bucketMeta):
		return nil
	case string(bucketRollouts):
		target = &Document{}
	case string(bucketAudit):
		if len(k) != 8 {
			return fmt.Errorf("key of %d bytes, want 8", len(k))
		}
		audit[string(k)] = true
		target = &Event{}
	case string(bucketByRollout):
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k)-i-1 != 8 {
			return errors.New("malformed index key")
		}
		if !audit[string(k[i+1:])] {
			return errors.New("index names a missing event")
		}
		return nil
	case string(bucketReleases):
		target = &ReleaseRecord{}
	case string(bucketCells):
		_, err := decodeCellRecord(v)
		return err
	case string(bucketHistory):
		target = &map[string]any{}
	}
	return json.Unmarshal(v, target)
}

// keyString renders a key for a message: audit seqs as numbers.
func keyString(bucket []byte, k []byte) string {
	if bytes.Equal(bucket, bucketAudit) && len(k) == 8 {
		return fmt.Sprint(binary.BigEndian.Uint64(k))
	}
	if i := bytes.IndexByte(k, 0); i >= 0 && len(k)-i-1 == 8 {
		return fmt.Sprintf("%q/%d", k[:i], binary.BigEndian.Uint64(k[i+1:]))
	}
	return fmt.Sprintf("%q", k)
}

// ExportStats counts what ExportJournal wrote and could not read.
type ExportStats struct {
	Entries  int
	Problems []string
}

// exportLine is one line of an export: a bucket entry, its value as JSON.
type exportLine struct {
	Bucket string          `json:"bucket"`
	Key    string          `json:"key"`
	Value  json.RawMessage `json:"value,omitempty"`
}

// ExportJournal writes every readable entry of the journal at path to w as
// JSON lines ({"bucket","key","value"}; audit keys are sequence numbers),
// skipping what cannot be read and listing it in the stats. It salvages
// what a damaged file still holds.
func ExportJournal(path string, w io.Writer) (ExportStats, error) {
	var st ExportStats
	db, err := openReadOnly(path)
	if err != nil {
		return st, err
	}
	defer db.Close()
	enc := json.NewEncoder(w)
	var werr error
	audit := map[string]bool{}
	st.Problems = walkBuckets(db, func(bucket string, k, v []byte) error {
		if werr != nil {
			return nil
		}
		if err := decodeEntry(bucket, k, v, audit); err != nil {
			return err
		}
		line := exportLine{Bucket: bucket, Key: keyString([]byte(bucket), k)}
		if len(v) > 0 && bucket != string(bucketMeta) {
			line.Value = json.RawMessage(v)
		}
		if werr = enc.Encode(line); werr == nil {
			st.Entries++
		}
		return nil
	})
	if werr != nil {
		return st, fmt.Errorf("export journal: %w", werr)
	}
	return st, nil
}

// CompactStats describes a compaction.
type CompactStats struct {
	Entries           int
	SizeBefore, After int64
	Problems          []string // entries that could not be read and were left out
}

// CompactJournal copies every readable, decodable entry of the journal at
// src into a new journal at dst (which must not exist), leaving out free
// pages and anything damaged, and verifies the copy. The caller swaps the
// files (cellgate journal compact keeps the original beside it).
func CompactJournal(src, dst string) (CompactStats, error) {
	var st CompactStats
	if fi, err := os.Stat(src); err == nil {
		st.SizeBefore = fi.Size()
	}
	if _, err := os.Stat(dst); err == nil {
		return st, fmt.Errorf("compact journal: %s already exists", dst)
	}
	in, err := openReadOnly(src)
	if err != nil {
		return st, err
	}
	defer in.Close()
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: maintLockTimeout})
	if err != nil {
		return st, fmt.Errorf("compact journal: create %s: %w", dst, err)
	}
	j := &Journal{db: out, path: dst}
	if err := j.update(initBuckets); err != nil {
		out.Close()
		return st, fmt.Errorf("compact journal: %w", err)
	}
	st.Problems, err = copyEntries(in, j)
	if err == nil {
		err = verify(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return st, fmt.Errorf("compact journal: %w", err)
	}
	if fi, err := os.Stat(dst); err == nil {
		st.After = fi.Size()
	}
	st.Entries = countEntries(dst)
	return st, nil
}

// copyEntries copies in's decodable entries into j in batches, keeping
// the audit bucket's sequence so new events never reuse a number.
func copyEntries(in *bolt.DB, j *Journal) ([]string, error) {
	type kv struct{ b, k, v []byte }
	var batch []kv
	var werr error
	flush := func() {
		if werr != nil || len(batch) == 0 {
			return
		}
		werr = j.update(func(tx *bolt.Tx) error {
			for _, e := range batch {
				b := tx.Bucket(e.b)
				b.FillPercent = 1 // keys arrive in order: fill pages, do not split them half-empty
				if err := b.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
	}
	audit := map[string]bool{}
	problems := walkBuckets(in, func(bucket string, k, v []byte) error {
		if bucket == string(bucketMeta) {
			return nil // initBuckets wrote the schema
		}
		if err := decodeEntry(bucket, k, v, audit); err != nil {
			return err
		}
		batch = append(batch, kv{[]byte(bucket), bytes.Clone(k), bytes.Clone(v)})
		if len(batch) >= 10_000 {
			flush()
		}
		return nil
	})
	flush()
	if werr != nil {
		return problems, werr
	}
	var seq uint64
	_ = guard("read audit sequence", func() error {
		return in.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketAudit); b != nil {
				seq = b.Sequence()
			}
			return nil
		})
	})
	return problems, j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if last, _ := b.Cursor().Last(); last != nil {
			seq = max(seq, binary.BigEndian.Uint64(last))
		}
		return b.SetSequence(seq)
	})
}

// countEntries counts the entries of a journal file (0 if unreadable).
func countEntries(path string) int {
	db, err := openReadOnly(path)
	if err != nil {
		return 0
	}
	defer db.Close()
	n := 0
	walkBuckets(db, func(string, []byte, []byte) error { n++; return nil })
	return n
}
