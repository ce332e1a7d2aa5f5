package cellgate_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// auditPage is GET /v1/audit with a query; it returns the events' seqs,
// the status and the body size.
func auditPage(t *testing.T, admin, query string) ([]uint64, int, int) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/v1/audit" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode, len(body)
	}
	var evs []struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &evs); err != nil {
		t.Fatalf("audit%s: %v", query, err)
	}
	seqs := make([]uint64, len(evs))
	for i, e := range evs {
		seqs[i] = e.Seq
	}
	return seqs, 200, len(body)
}

// ascending reports whether seqs grow by exactly one from first.
func ascending(seqs []uint64, first uint64) bool {
	for i, s := range seqs {
		if s != first+uint64(i) {
			return false
		}
	}
	return true
}

// TestAuditPaging: GET /v1/audit answers one page — by default the newest
// 1000 events, newest last — and ?since=SEQ&limit=N pages forward through
// the whole log; bad limits are refused.
func TestAuditPaging(t *testing.T) {
	c := startCluster(t, "[state.audit_retention]\nevents = 0\n", cellDef{name: "a", version: "v1", weight: 100})
	for i := range 1200 {
		if err := c.node.SetWeight("a", float64(1+i%100), "admin:t", "paging"); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := c.node.Controller().Audit(0, 0)
	last := all[len(all)-1].Seq
	admin := c.node.AdminAddr()

	seqs, status, size := auditPage(t, admin, "")
	if status != 200 || len(seqs) != 1000 || seqs[len(seqs)-1] != last || !ascending(seqs, last-999) {
		t.Fatalf("default page: status %d, %d events ending at %v; want the newest 1000 ending at %d", status, len(seqs), seqs[len(seqs)-1:], last)
	}
	t.Logf("GET /v1/audit over %d events: %d events, %d bytes", len(all), len(seqs), size)

	var got []uint64
	for since := uint64(0); ; {
		page, status, _ := auditPage(t, admin, fmt.Sprintf("?since=%d&limit=300", since))
		if status != 200 || len(page) > 300 {
			t.Fatalf("page after %d: status %d, %d events", since, status, len(page))
		}
		got = append(got, page...)
		if len(page) < 300 {
			break
		}
		since = page[len(page)-1]
	}
	if len(got) != len(all) || !ascending(got, all[0].Seq) {
		t.Errorf("paging with since/limit gave %d events, want all %d in order", len(got), len(all))
	}
	for _, q := range []string{"?limit=0", "?limit=10001", "?limit=x", "?since=1&limit=-1"} {
		if _, status, _ := auditPage(t, admin, q); status != 400 {
			t.Errorf("audit%s: status %d, want 400", q, status)
		}
	}
}

// TestAuditRetentionInNode: with state.audit_retention.events = 500 the
// node drops old events by itself as the log grows (a pass every 1000
// events and every minute), keeping the newest.
func TestAuditRetentionInNode(t *testing.T) {
	c := startCluster(t, "[state.audit_retention]\nevents = 500\n", cellDef{name: "a", version: "v1", weight: 100})
	for i := range 1200 {
		if err := c.node.SetWeight("a", float64(1+i%100), "admin:t", "retention"); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, "the retention pass after 1000 events", func() bool {
		evs, _ := c.node.Controller().Audit(0, 1)
		return len(evs) == 1 && evs[0].Seq > 400
	})
	evs, _ := c.node.Controller().Audit(0, 0)
	if n := len(evs); n > 500+1000 || evs[n-1].Seq < 1200 {
		t.Errorf("after 1200 changes with events = 500: %d events kept, newest %d", n, evs[n-1].Seq)
	}
}
