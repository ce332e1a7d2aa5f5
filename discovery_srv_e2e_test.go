package cellgate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cellgate/cellgate/discovery/dnstest"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestDiscoverySRVPriorityAndWeight: cell b is `srv:` on an in-test
// authoritative DNS server (miekg/dns on loopback) with two targets at
// priority 10 (weights 1 and 3) and one at priority 20. Under load the
// priority-10 targets take every request, about 1:3; a record change that
// gives the third target priority 5 moves every request to it; when it
// dies, priority 10 takes over again, with no failed request throughout.
// /v1/status reports each endpoint's priority and weight.
func TestDiscoverySRVPriorityAndWeight(t *testing.T) {
	d := dnstest.Start(t)
	var ups [3]*democell.Server
	for i := range ups {
		s, err := democell.Start("b", "v1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ups[i] = s
		d.Set(t, fmt.Sprintf("t%d.test", i), fmt.Sprintf("t%d.test. 1 IN A 127.0.0.1", i))
	}
	records := func(prio [3]int) {
		var rrs []string
		for i, w := range [3]int{1, 3, 1} {
			rrs = append(rrs, fmt.Sprintf("_http._tcp.b.test. 1 IN SRV %d %d %s t%d.test.", prio[i], w, portOf(t, ups[i].Addr()), i))
		}
		d.Set(t, "_http._tcp.b.test", rrs...)
	}
	records([3]int{10, 10, 20})
	c := startFromText(t, testtoml.Head("srv-1", t.TempDir()+"/j.db")+fmt.Sprintf(`[discovery]
interval = "50ms"
resolver = %q
[upstream]
eject_after = 3
eject_backoff = "100ms"
`, d.Addr)+testtoml.Cell("b", "", 100, "srv:_http._tcp.b.test"))
	l := startLoad(t, c.url(), 300, 500)
	counts := func() (n [3]int64) {
		for i, s := range ups {
			n[i] = s.Requests()
		}
		return n
	}
	testwait.For(t, 30*time.Second, "600 requests on priority 10", func() bool { n := counts(); return n[0]+n[1] >= 600 })
	n := counts()
	share := float64(n[1]) / float64(n[0]+n[1])
	t.Logf("priority 10 (weights 1, 3): %d and %d requests, share of weight 3: %.3f; priority 20: %d", n[0], n[1], share, n[2])
	if n[2] != 0 || share < 0.6 || share > 0.9 {
		t.Fatalf("requests %v: want none on priority 20 and about 1:3 on priority 10", n)
	}
	doc, err := backendStatus(c)
	if err != nil {
		t.Fatal(err)
	}
	if w := doc.Discovery[0].SRV[ups[1].Addr()]; w.Priority != 10 || w.Weight != 3 {
		t.Fatalf("/v1/status srv of %s: %+v, want priority 10 weight 3", ups[1].Addr(), w)
	}

	records([3]int{10, 10, 5})
	testwait.For(t, 30*time.Second, "the priority-5 target serving", func() bool { return ups[2].Requests() > 100 })
	before := counts()
	testwait.For(t, 30*time.Second, "200 more requests on priority 5", func() bool { return ups[2].Requests() > before[2]+200 })
	after := counts()
	t.Logf("after the record change: %d more on priority 10, %d on priority 5", after[0]+after[1]-before[0]-before[1], after[2]-before[2])
	if after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("priority 10 still served %v → %v after priority 5 appeared", before, after)
	}

	ups[2].Kill()
	mark := counts()
	testwait.For(t, 30*time.Second, "priority 10 serving again", func() bool { n := counts(); return n[0]+n[1] > mark[0]+mark[1]+200 })
	l.stop()
	t.Logf("priority 5 killed: priority 10 took over; %d of %d requests failed", l.failed.Load(), l.requests.Load())
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed", f)
	}
}
