package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/rollout"
)

// newJournal makes a journal with a few manual weight events.
func newJournal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	c, err := rollout.Open(path, rollout.Options{Cells: map[string]float64{"a": 1, "b": 1}, NoSync: true}, rollout.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := c.SetWeight("a", float64(i), "admin:t", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJournalTools: check passes a healthy journal and fails a damaged
// one with exit 1; export writes every entry as JSON lines; compact swaps
// in a verified copy and keeps the original.
func TestJournalTools(t *testing.T) {
	path := newJournal(t)
	if code, out, errs := runCLI("journal", "check", "-path", path); code != 0 || !strings.Contains(out, "audit             20 entries") {
		t.Fatalf("check a healthy journal: exit %d\n%s%s", code, out, errs)
	}
	export := filepath.Join(t.TempDir(), "dump.jsonl")
	if code, _, errs := runCLI("journal", "export", "-path", path, "-o", export); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	data, _ := os.ReadFile(export)
	audit := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var l struct{ Bucket, Key string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if l.Bucket == "audit" {
			audit++
		}
	}
	if audit != 20 {
		t.Errorf("export holds %d audit events, want 20", audit)
	}
	if code, out, errs := runCLI("journal", "compact", "-path", path); code != 0 || !strings.Contains(out, "original kept as") {
		t.Fatalf("compact: exit %d\n%s%s", code, out, errs)
	}
	if baks, _ := filepath.Glob(path + ".*.bak"); len(baks) != 1 {
		t.Errorf("compact kept %d originals, want 1", len(baks))
	}
	if code, out, errs := runCLI("journal", "check", "-path", path); code != 0 {
		t.Fatalf("check the compacted journal: exit %d\n%s%s", code, out, errs)
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage!"), int64(os.Getpagesize())+16+40) // meta page 1's high-water mark
	f.Close()
	code, out, errs := runCLI("journal", "check", "-path", path)
	if code != 1 || !strings.Contains(out, "meta page 1") || !strings.Contains(errs, "damaged") {
		t.Errorf("check a damaged journal: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runCLI("journal", "check"); code != 2 {
		t.Errorf("journal check without a path: exit %d, want 2", code)
	}
}
