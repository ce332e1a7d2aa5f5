package rollout

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeJournal builds a journal of n manual weight events plus a finished
// rollout, committed in batches (fast), and returns its path.
func writeJournal(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	j, err := openJournal(path, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0).UTC()
	for i := 0; i < n; i += 1000 {
		err := j.update(func(tx *bolt.Tx) error {
			for k := i; k < min(i+1000, n); k++ {
				ev := Event{Time: now.Add(time.Duration(k) * time.Second), Actor: "admin:t", Action: ActionSetWeight,
					Reason: "manual weight change on a", Before: Weights{"a": float64(k % 100)}, After: Weights{"a": float64((k + 1) % 100)}}
				if err := appendEvent(tx, &ev); err != nil {
					return err
				}
			}
			return putJSON(tx.Bucket(bucketCells), []byte("a"), float64(n%100))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// pageOf returns the id of a page of the given type ("leaf", "branch",
// "freelist", …) in the middle of the file, and the page size.
func pageOf(t *testing.T, path, typ string) (int64, int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []int64
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; id < int(tx.Size()/int64(db.Info().PageSize)); id++ {
			if p, err := tx.Page(id); err == nil && p != nil && p.Type == typ {
				ids = append(ids, int64(id))
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		t.Fatalf("no %s page in %s: %v", typ, path, err)
	}
	return ids[len(ids)/2], int64(db.Info().PageSize)
}

// scribble overwrites n bytes at off with seeded random bytes.
func scribble(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// newerMeta returns the page number (0 or 1) of the meta page holding the
// last transaction.
func newerMeta(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var txid int
	_ = db.View(func(tx *bolt.Tx) error { txid = tx.ID(); return nil })
	return int64(txid % 2)
}

// TestDamagedJournalRefused: each kind of damage found in the field makes
// opening the journal fail with ErrDamaged and a message naming the
// damage and the recovery path — never a panic, a fault or a silent
// fallback to an older transaction — and `journal check` reports it.
func TestDamagedJournalRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"truncated to 128 KiB", func(t *testing.T, path string) {
			if err := os.Truncate(path, 131072); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"garbled data page", func(t *testing.T, path string) {
			id, ps := pageOf(t, path, "leaf")
			scribble(t, path, id*ps, int(ps))
		}, "consistency check failed"},
		{"garbled branch page", func(t *testing.T, path string) {
			id, ps := pageOf(t, path, "branch")
			scribble(t, path, id*ps+16, 64)
		}, "consistency check failed"},
		{"garbled meta page", func(t *testing.T, path string) {
			ps := int64(os.Getpagesize())
			scribble(t, path, newerMeta(t, path)*ps+16+40, 8) // the high-water mark
		}, "meta page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeJournal(t, 3000)
			tc.damage(t, path)
			j, err := OpenJournal(path, 0)
			if err == nil {
				j.Close()
				t.Fatal("a damaged journal opened")
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "journal check") {
				t.Fatalf("open: %v\nwant ErrDamaged naming %q and the recovery path", err, tc.want)
			}
			t.Logf("open refused: %v", err)
			r, err := CheckJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() {
				t.Errorf("journal check found nothing wrong: %+v", r)
			}
		})
	}
}

// TestDamageAfterOpenFailsTheRead: a page damaged while the node runs
// makes the reads that touch it fail with ErrDamaged (GET /v1/audit
// answers 500), instead of panicking in the handler.
func TestDamageAfterOpenFailsTheRead(t *testing.T) {
	path := writeJournal(t, 3000)
	id, ps := pageOf(t, path, "branch")
	j, err := OpenJournal(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	scribble(t, path, id*ps+16, 64) // the mapping is shared: the node sees it
	if _, err := j.Audit(0, 0); !errors.Is(err, ErrDamaged) {
		t.Fatalf("audit over a damaged page: %v, want ErrDamaged", err)
	}
}

// TestCompactRecovers: compact copies what a damaged journal still holds
// into a fresh journal that opens and keeps the audit sequence; on a
// healthy journal it keeps every entry.
func TestCompactRecovers(t *testing.T) {
	path := writeJournal(t, 3000)
	dst := path + ".compact"
	st, err := CompactJournal(path, dst)
	if err != nil || len(st.Problems) != 0 {
		t.Fatalf("compact a healthy journal: %v %v", err, st.Problems)
	}
	if st.Entries != 3000+2 { // events, the cell weight, the schema
		t.Errorf("compacted %d entries, want %d", st.Entries, 3002)
	}

	ps := int64(os.Getpagesize())
	scribble(t, path, newerMeta(t, path)*ps+16+40, 8)
	dst2 := path + ".compact2"
	if _, err := CompactJournal(path, dst2); err != nil {
		t.Fatalf("compact after a garbled meta page: %v", err)
	}
	j, err := OpenJournal(dst2, 0)
	if err != nil {
		t.Fatalf("open the compacted journal: %v", err)
	}
	defer j.Close()
	evs, err := j.Audit(0, 0)
	if err != nil || len(evs) == 0 {
		t.Fatalf("compacted audit: %d events, %v", len(evs), err)
	}
	var next []Event
	err = j.update(func(tx *bolt.Tx) error {
		ev := Event{Action: ActionSetWeight}
		err := appendEvent(tx, &ev)
		next = append(next, ev)
		return err
	})
	if err != nil || next[0].Seq <= evs[len(evs)-1].Seq {
		t.Errorf("next seq after compaction %d, last kept %d (%v): a sequence number would be reused", next[0].Seq, evs[len(evs)-1].Seq, err)
	}
}

// BenchmarkVerify50k measures the open-time check (meta pages and bbolt's
// Tx.Check) on a journal of 50 000 events.
func BenchmarkVerify50k(b *testing.B) {
	path := writeJournal(b, 50_000)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if err := preflight(path); err != nil {
			b.Fatal(err)
		}
		if err := verify(db); err != nil {
			b.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}
