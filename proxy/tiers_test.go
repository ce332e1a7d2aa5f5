package proxy

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/valyala/fasthttp"
)

// TestBuildTiers: defaults keep the plain path; priorities group and sort;
// weights of 0 get a tiny share beside others and an equal one alone.
func TestBuildTiers(t *testing.T) {
	eps := func(addrs ...string) []*endpoint {
		var out []*endpoint
		for _, a := range addrs {
			out = append(out, &endpoint{addr: a})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		weights map[string]EndpointWeight
		want    string // tiers as "prio:addr=w,…;…" ("" for none)
	}{
		{"no weights", nil, ""},
		{"all equal", map[string]EndpointWeight{"a": {0, 5}, "b": {0, 5}, "c": {0, 5}}, ""},
		{"unnamed is 0/1", map[string]EndpointWeight{"a": {0, 1}}, ""},
		{"weights", map[string]EndpointWeight{"a": {0, 1}, "b": {0, 3}, "c": {0, 1}}, "0:a=1,b=3,c=1"},
		{"priorities", map[string]EndpointWeight{"a": {20, 1}, "b": {10, 1}, "c": {20, 2}}, "10:b=1;20:a=1,c=2"},
		{"zero beside others", map[string]EndpointWeight{"a": {0, 0}, "b": {0, 4}, "c": {0, 2}}, "0:a=0.002,b=4,c=2"},
		{"all zero", map[string]EndpointWeight{"a": {1, 0}, "b": {1, 0}, "c": {2, 0}}, "1:a=1,b=1;2:c=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			for i, tr := range buildTiers(eps("a", "b", "c"), tc.weights) {
				if i > 0 {
					got += ";"
				}
				got += fmt.Sprintf("%d:", tr.prio)
				for j, e := range tr.eps {
					if j > 0 {
						got += ","
					}
					got += fmt.Sprintf("%s=%g", e.addr, tr.w[j])
				}
				if math.Abs(tr.cum[len(tr.cum)-1]-sum(tr.w)) > 1e-9 {
					t.Fatalf("tier %d: sums %v of %v", tr.prio, tr.cum, tr.w)
				}
			}
			if got != tc.want {
				t.Fatalf("tiers %q, want %q", got, tc.want)
			}
		})
	}
}

func sum(ws []float64) float64 {
	s := 0.0
	for _, w := range ws {
		s += w
	}
	return s
}

// TestEndpointPriorityAndWeight: with SRV-style priorities and weights, the
// lowest priority takes every request, split by weight (1:3 here); when its
// endpoints die the next priority takes over with no failed request; when
// they are back, the traffic returns to them.
func TestEndpointPriorityAndWeight(t *testing.T) {
	var n [4]atomic.Int64
	var ups [4]*killable
	for i := range ups {
		ups[i] = newKillable(t, func(ctx *fasthttp.RequestCtx) { n[i].Add(1) })
	}
	opts := testOptions()
	opts.EjectAfter, opts.EjectBackoff, opts.EjectBackoffMax = 3, 50*time.Millisecond, time.Hour
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1,
		Endpoints: []string{ups[0].addr, ups[1].addr, ups[2].addr, ups[3].addr},
		Weights:   map[string]EndpointWeight{ups[0].addr: {10, 10}, ups[1].addr: {10, 30}, ups[2].addr: {20, 1}, ups[3].addr: {20, 1}},
	}}, Hooks{})
	c := newClient(t, addr)
	send := func(k int) (failed int) {
		for range k {
			if get(t, c, "/").StatusCode() != 200 {
				failed++
			}
		}
		return failed
	}
	counts := func() (out [4]int64) {
		for i := range n {
			out[i] = n[i].Swap(0)
		}
		return out
	}
	const k = 800
	if f := send(k); f != 0 {
		t.Fatalf("%d failed with every endpoint up", f)
	}
	got := counts()
	share := float64(got[1]) / float64(got[0]+got[1])
	t.Logf("priority 10 (weights 10, 30): %d and %d requests (share of the heavier %.3f); priority 20: %d, %d", got[0], got[1], share, got[2], got[3])
	// 800 draws at p = 0.75: sd 0.015; ±0.1 is over six of them.
	if got[2]+got[3] != 0 || share < 0.65 || share > 0.85 {
		t.Fatalf("counts %v: want none on priority 20 and about 3:1 on priority 10", got)
	}

	ups[0].kill()
	ups[1].kill()
	if f := send(k); f != 0 {
		t.Fatalf("%d requests failed when priority 10 died", f)
	}
	got = counts()
	t.Logf("priority 10 dead: %v", got)
	if got[2] == 0 || got[3] == 0 || got[2]+got[3] != k {
		t.Fatalf("counts %v: want all %d on priority 20, on both", got, k)
	}

	ups[0].revive()
	ups[1].revive()
	testwait.For(t, 10*time.Second, "priority 10 readmitted", func() bool {
		st := p.Status()[0].Endpoints
		return st[0].Up && st[1].Up
	})
	counts()
	send(k)
	if got = counts(); got[2]+got[3] != 0 || got[0] == 0 || got[1] == 0 {
		t.Fatalf("counts %v after priority 10 came back: want all on it", got)
	}
}

// TestTieredPickAllocs: choosing by priority and weight allocates nothing.
func TestTieredPickAllocs(t *testing.T) {
	var eps []*endpoint
	weights := map[string]EndpointWeight{}
	for i := range 8 {
		a := fmt.Sprint("10.0.0.", i, ":80")
		eps = append(eps, &endpoint{addr: a})
		weights[a] = EndpointWeight{Priority: i % 2, Weight: float64(i)}
	}
	c := &cell{endpoints: eps, tiers: buildTiers(eps, weights)}
	now := func() int64 { return 0 }
	r := uint64(0x9e3779b97f4a7c15)
	if allocs := testing.AllocsPerRun(1000, func() {
		r = r*6364136223846793005 + 1
		if c.pickEndpoint(r, eps[0], now) == nil {
			t.Fatal("no endpoint")
		}
	}); allocs != 0 {
		t.Fatalf("%v allocations per pick", allocs)
	}
}
