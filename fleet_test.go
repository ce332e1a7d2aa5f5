package cellgate

import (
	"testing"
	"time"

	"github.com/cellgate/cellgate/rollout"
)

func TestRecentDocuments(t *testing.T) {
	base := time.Unix(1000, 0)
	var docs []rollout.Document
	for i := range 10 {
		st := rollout.StatusPromoted
		if i%4 == 0 {
			st = rollout.StatusProgressing
		}
		docs = append(docs, rollout.Document{ID: string(rune('a' + i)), Status: st, Updated: base.Add(time.Duration(i) * time.Second)})
	}
	got := recentDocuments(docs, 2)
	var ids string
	for _, d := range got {
		ids += d.ID
	}
	// Running: a, e, i (always kept); finished, newest first: j, h.
	if ids != "jihea" {
		t.Fatalf("kept %q, want jihea (every running one and the 2 newest finished)", ids)
	}
}
