package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retentionRig builds a journal holding, oldest first: a finished rollout
// (old), 100 manual weight changes (old), a finished rollout that began
// long ago but ended recently, a running rollout (old), then 48 h later 10
// manual weight changes (recent).
func retentionRig(t *testing.T) (r *rig, old, straddling, running string) {
	r = newRig(t, Options{})
	old = r.start(canaryPlan())
	must(t, r.c.Abort(old, "admin:t", "done"))
	for i := range 100 {
		must(t, r.c.SetWeight("blue-2", float64(i), "admin:t", "old"))
	}
	p := canaryPlan()
	p.Targets, p.Baseline = []string{"green-1"}, []string{"blue-1"}
	straddling = r.start(p)
	p2 := canaryPlan()
	p2.Name = "running"
	running = r.start(p2)
	r.clock.Advance(48 * time.Hour)
	must(t, r.c.Abort(straddling, "admin:t", "ended recently"))
	for i := range 10 {
		must(t, r.c.SetWeight("green-2", float64(i), "admin:t", "recent"))
	}
	return r, old, straddling, running
}

// TestAuditRetention: events out of retention (by age, by count) are
// dropped, except a running rollout's, and a finished rollout's go whole
// or not at all; documents and release records stay.
func TestAuditRetention(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ret     Retention
		keepOld bool
		keepMid bool // the rollout that began old and ended 48 h later
		keepMan int  // of the 100 old manual events
		keepNew int  // of the 10 recent ones
	}{
		// Seqs: old rollout 1–2, old manual 3–102, straddling start 103,
		// running start 104, straddling abort 105, recent manual 106–115.
		{name: "by age", ret: Retention{MaxAge: 24 * time.Hour}, keepMid: true, keepNew: 10},
		{name: "by count", ret: Retention{MaxEvents: 5}, keepNew: 5},
		{name: "by count, some old kept", ret: Retention{MaxEvents: 60}, keepMid: true, keepMan: 47, keepNew: 10},
		{name: "off", ret: Retention{}, keepOld: true, keepMid: true, keepMan: 100, keepNew: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, old, straddling, running := retentionRig(t)
			before, _ := r.c.Audit(0, 0)
			oldEvs, _ := r.c.j.RolloutEvents(old)
			straddleEvs, _ := r.c.j.RolloutEvents(straddling)
			runEvs, _ := r.c.j.RolloutEvents(running)

			n, err := r.c.j.PruneAudit(tc.ret, r.clock.Now())
			must(t, err)
			after, _ := r.c.Audit(0, 0)
			if len(before)-len(after) != n {
				t.Errorf("reported %d dropped, %d went", n, len(before)-len(after))
			}
			count := map[string]int{}
			for _, ev := range after {
				switch {
				case ev.Rollout != "" && !strings.HasPrefix(ev.Rollout, manualPrefix):
					count[ev.Rollout]++
				case hasKey(ev.After, "blue-2"):
					count["manual-old"]++
				case hasKey(ev.After, "green-2"):
					count["manual-new"]++
				}
			}
			if got := count[running]; got != len(runEvs) {
				t.Errorf("running rollout kept %d of %d events", got, len(runEvs))
			}
			if got, want := count[straddling], map[bool]int{true: len(straddleEvs)}[tc.keepMid]; got != want {
				t.Errorf("rollout that ended 48 h after it began kept %d events, want %d (all or none)", got, want)
			}
			if got, want := count[old], map[bool]int{true: len(oldEvs)}[tc.keepOld]; got != want {
				t.Errorf("old finished rollout kept %d events, want %d", got, want)
			}
			if count["manual-old"] != tc.keepMan || count["manual-new"] != tc.keepNew {
				t.Errorf("kept %d old and %d recent manual events, want %d and %d", count["manual-old"], count["manual-new"], tc.keepMan, tc.keepNew)
			}
			if v := r.view(old); v.Status != StatusAborted {
				t.Errorf("old rollout's document: %+v", v)
			}
			rel, _ := r.c.Releases()
			if len(rel) != 3 {
				t.Errorf("release catalog has %d records, want 3", len(rel))
			}
			if n2, _ := r.c.j.PruneAudit(tc.ret, r.clock.Now()); n2 != 0 {
				t.Errorf("a second pass dropped %d more", n2)
			}
		})
	}
}

func hasKey(w Weights, k string) bool { _, ok := w[k]; return ok }

// TestAuditRetentionBoundsJournal: 50 000 manual weight changes with a
// retention pass every 5000 (as the controller's every-1000-events and
// every-minute passes make, coarser) leave the newest 10 000 events, and a
// journal file a fraction of the size it reaches without retention.
func TestAuditRetentionBoundsJournal(t *testing.T) {
	size := func(ret Retention) (int64, int) {
		path := filepath.Join(t.TempDir(), "state.db")
		j, err := openJournal(path, 0, true)
		must(t, err)
		defer j.Close()
		now := time.Unix(1_700_000_000, 0).UTC()
		for i := 0; i < 50_000; i += 1000 {
			must(t, j.update(func(tx *bolt.Tx) error {
				for k := i; k < i+1000; k++ {
					ev := Event{Time: now, Actor: "admin:t", Action: ActionSetWeight, Reason: "manual weight change on a: load",
						Before: Weights{"a": float64(k % 100)}, After: Weights{"a": float64((k + 1) % 100)}}
					if err := appendEvent(tx, &ev); err != nil {
						return err
					}
				}
				return nil
			}))
			if i%5000 == 4000 {
				_, err := j.PruneAudit(ret, now)
				must(t, err)
			}
		}
		evs, _ := j.Audit(0, 0)
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size(), len(evs)
	}
	unbounded, all := size(Retention{})
	bounded, kept := size(Retention{MaxEvents: 10_000})
	t.Logf("50 000 weight changes: %d events, %.1f MiB without retention; %d events, %.1f MiB with audit_retention.events = 10000",
		all, float64(unbounded)/(1<<20), kept, float64(bounded)/(1<<20))
	if kept != 10_000 || all != 50_000 {
		t.Errorf("kept %d of %d events, want 10000 of 50000", kept, all)
	}
	if bounded >= unbounded {
		t.Errorf("journal %d bytes with retention, %d without", bounded, unbounded)
	}
}

// BenchmarkAuditPage measures GET /v1/audit's journal read on 50 000
// events: the default page (the newest 1000) against the whole log.
func BenchmarkAuditPage(b *testing.B) {
	path := writeJournal(b, 50_000)
	j, err := OpenJournal(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	b.Run("tail-1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if evs, err := j.AuditTail(1000); err != nil || len(evs) != 1000 {
				b.Fatal(len(evs), err)
			}
		}
	})
	b.Run("all-50000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if evs, err := j.Audit(0, 0); err != nil || len(evs) != 50_000 {
				b.Fatal(len(evs), err)
			}
		}
	})
}
