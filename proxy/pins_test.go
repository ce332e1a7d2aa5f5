package proxy

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
)

// testClock is an injected clock for Hooks.Now.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

const pinIdle = 5 * time.Minute

func pinOptions() Options {
	o := testOptions()
	o.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	o.PinMemory = 4 << 20
	o.PinIdle = pinIdle
	return o
}

func canaryCells(t *testing.T) []CellSpec {
	return []CellSpec{
		{Name: "stable", Version: "v1", Weight: 95, Endpoints: []string{okUpstream(t, nil)}},
		{Name: "canary", Version: "v2", Weight: 5, Endpoints: []string{okUpstream(t, nil)}},
	}
}

// cellOf sends one request for key and returns the cell that served it.
func cellOf(t *testing.T, c *fasthttp.HostClient, key string, hdrs ...string) string {
	t.Helper()
	r := get(t, c, "/", append([]string{"X-User-ID", key}, hdrs...)...)
	if r.StatusCode() != 200 {
		t.Fatalf("key %s: status %d", key, r.StatusCode())
	}
	return string(r.Header.Peek("X-Cellgate-Cell"))
}

// TestPinsProxyPromotion: through the proxy, sessions active before a
// 5 → 25 % promotion keep their cell until idle for pin_idle, then move; a
// revert brings canary sessions back on their next request; shares and pin
// counts are reported.
func TestPinsProxyPromotion(t *testing.T) {
	clk := newTestClock()
	p, addr := startProxy(t, pinOptions(), canaryCells(t), Hooks{Now: clk.Now})
	c := newClient(t, addr)
	const n = 300
	before := make([]string, n)
	for i := range n {
		before[i] = cellOf(t, c, fmt.Sprintf("user-%d", i))
	}
	clk.advance(time.Second)
	p.SetWeights(map[string]float64{"stable": 75, "canary": 25})
	tab := p.snap.Load().table
	moved := 0
	for i := range n {
		if before[i] == "stable" && tab.PickKey(fmt.Appendf(nil, "user-%d", i)) == 1 {
			moved++
		}
	}
	if moved < 30 {
		t.Fatalf("only %d keys would move; the test needs a real promotion", moved)
	}
	for round := range 3 {
		clk.advance(3 * time.Minute)
		for i := range n {
			if got := cellOf(t, c, fmt.Sprintf("user-%d", i)); got != before[i] {
				t.Fatalf("round %d: user-%d moved %s → %s mid-session", round, i, before[i], got)
			}
		}
	}
	if pins := p.Pins()["stable"]; pins != int64(moved) {
		t.Fatalf("Pins()[stable] = %d, want %d", pins, moved)
	}
	st := p.Status()
	if st[0].Pins != int64(moved) || st[1].Share <= 0 || st[1].Share >= 0.25 {
		t.Fatalf("status %+v: want %d pins on stable and a canary share below its 25 %% weight", st, moved)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p)
	if n, err := testutil.GatherAndCount(reg, "cellgate_cell_share", "cellgate_cell_weight"); err != nil || n != 4 {
		t.Fatalf("metrics: %d series, %v", n, err)
	}

	// Idle past pin_idle: sessions follow the table.
	clk.advance(pinIdle + time.Second)
	onCanary := 0
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		want := tab.Cell(tab.PickKey([]byte(key))).Name
		if got := cellOf(t, c, key); got != want {
			t.Fatalf("%s after idling: %s, want %s", key, got, want)
		}
		if want == "canary" {
			onCanary++
		}
	}

	// Revert: canary sessions are back on stable at their next request.
	clk.advance(time.Second)
	p.SetWeights(map[string]float64{"stable": 95, "canary": 5})
	back := 0
	tab = p.snap.Load().table
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		want := tab.Cell(tab.PickKey([]byte(key))).Name
		if got := cellOf(t, c, key); got != want {
			t.Fatalf("%s after the revert: %s, want %s", key, got, want)
		}
		if want == "stable" {
			back++
		}
	}
	if onCanary == 0 || back < n*9/10 {
		t.Fatalf("%d on canary before the revert, %d on stable after", onCanary, back)
	}
}

// TestPinsCookieAcrossNodes: two proxies with the same seed and secret
// honour one pin cookie; a tampered cookie is ignored, not an error.
func TestPinsCookieAcrossNodes(t *testing.T) {
	clk := newTestClock()
	opts := pinOptions()
	opts.SetCookie = true
	opts.PinSecret = []byte("fleet secret")
	cells := canaryCells(t)
	a, addrA := startProxy(t, opts, cells, Hooks{Now: clk.Now})
	b, addrB := startProxy(t, opts, cells, Hooks{Now: clk.Now})
	ca, cb := newClient(t, addrA), newClient(t, addrB)

	// Keys on stable now that a promotion to 50 % will move.
	var keys []string
	probe := balancer.NewTable(42, []balancer.Cell{{Name: "stable", Weight: 50}, {Name: "canary", Weight: 50}})
	for i := 0; len(keys) < 10; i++ {
		k := fmt.Sprintf("u%d", i)
		if a.snap.Load().table.PickKey([]byte(k)) == 0 && probe.PickKey([]byte(k)) == 1 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if got := cellOf(t, ca, k); got != "stable" {
			t.Fatalf("%s on %s before the promotion", k, got)
		}
	}
	clk.advance(time.Second)
	for _, p := range []*Proxy{a, b} {
		p.SetWeights(map[string]float64{"stable": 50, "canary": 50})
	}
	var first string // keys[0]'s pin cookie
	for _, k := range keys {
		r := get(t, ca, "/", "X-User-ID", k)
		if cell := string(r.Header.Peek("X-Cellgate-Cell")); cell != "stable" {
			t.Fatalf("%s: node A moved it to %s", k, cell)
		}
		pin := string(r.Header.PeekCookie("cellgate_pin"))
		if pin == "" {
			t.Fatalf("%s: no pin cookie from node A", k)
		}
		ck := fasthttp.AcquireCookie()
		if err := ck.Parse(pin); err != nil {
			t.Fatal(err)
		}
		value := string(ck.Value())
		fasthttp.ReleaseCookie(ck)
		if first == "" {
			first = value
		}

		clk.advance(time.Second)
		if got := cellOf(t, cb, k, "Cookie", "cellgate_pin="+value); got != "stable" {
			t.Fatalf("%s: node B ignored the pin cookie, served %s", k, got)
		}
		if got := cellOf(t, cb, k+"-other", "Cookie", "cellgate_pin="+value); got != cellOfTable(b, k+"-other") {
			t.Fatalf("%s: a cookie copied to another key pinned it", k)
		}
		tampered := strings.Replace(value, ".", ".9", 1)
		r = get(t, cb, "/", "X-User-ID", k+"-t", "Cookie", "cellgate_pin="+tampered)
		if r.StatusCode() != 200 || string(r.Header.Peek("X-Cellgate-Cell")) != cellOfTable(b, k+"-t") {
			t.Fatalf("%s: tampered cookie: status %d cell %s", k, r.StatusCode(), r.Header.Peek("X-Cellgate-Cell"))
		}
	}
	// A revert on node B voids the cookie pin there at once.
	clk.advance(time.Second)
	b.SetWeights(map[string]float64{"stable": 0, "canary": 100})
	if got := cellOf(t, cb, keys[0], "Cookie", "cellgate_pin="+first); got != "canary" {
		t.Fatalf("after stable went to 0: %s", got)
	}
}

func cellOfTable(p *Proxy, key string) string {
	t := p.snap.Load().table
	return t.Cell(t.PickKey([]byte(key))).Name
}

// TestPinOptionsValidate rejects bad pin settings.
func TestPinOptionsValidate(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"negative memory": func(o *Options) { o.PinMemory = -1 },
		"tiny memory":     func(o *Options) { o.PinMemory = 1024 },
		"no idle":         func(o *Options) { o.PinMemory = 1 << 20; o.PinIdle = 0 },
		"no cookie name": func(o *Options) {
			o.PinMemory, o.SetCookie, o.PinSecret, o.PinCookieName = 1<<20, true, []byte("k"), ""
		},
	} {
		o := testOptions()
		mod(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkProxyGETPins is BenchmarkProxyGET's 16-byte case with pins and
// pin cookies on, for a key that is not pinned.
func BenchmarkProxyGETPins(b *testing.B) {
	up := startUpstream(b, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("0123456789abcdef") })
	opts := DefaultOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	opts.PinMemory, opts.SetCookie, opts.PinSecret = 16<<20, true, []byte("bench")
	p, addr := startProxy(b, opts, benchCells(up), Hooks{})
	p.SetWeights(map[string]float64{"b": 1.5}) // a promotion under way
	benchGET(b, addr)
}
