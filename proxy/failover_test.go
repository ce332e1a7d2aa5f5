package proxy

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/valyala/fasthttp"
)

// killable is a loopback upstream that can die abruptly (listener and every
// connection closed, as when a process is killed) and come back on the same
// address.
type killable struct {
	t    testing.TB
	addr string
	h    fasthttp.RequestHandler

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	srv   *fasthttp.Server
}

func newKillable(t testing.TB, h fasthttp.RequestHandler) *killable {
	t.Helper()
	k := &killable{t: t, h: h}
	k.start("127.0.0.1:0")
	t.Cleanup(k.kill)
	return k
}

func (k *killable) start(addr string) {
	k.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		k.t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ln, k.addr, k.conns = ln, ln.Addr().String(), map[net.Conn]bool{}
	k.srv = &fasthttp.Server{Handler: k.h, DisableHeaderNamesNormalizing: true,
		ConnState: func(c net.Conn, s fasthttp.ConnState) {
			k.mu.Lock()
			defer k.mu.Unlock()
			if s == fasthttp.StateNew {
				k.conns[c] = true
			} else if s == fasthttp.StateClosed {
				delete(k.conns, c)
			}
		}}
	go k.srv.Serve(ln) //nolint:errcheck
}

// kill closes the listener and every open connection at once.
func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln == nil {
		return
	}
	k.ln.Close()
	for c := range k.conns {
		c.Close()
	}
	k.ln = nil
}

// revive listens again on the same address.
func (k *killable) revive() { k.start(k.addr) }

// cellNamed answers 200 with the cell's name.
func cellNamed(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name) }
}

// fakeClock is an injectable health clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// failoverProxy runs a proxy over cells a, b, c (one killable endpoint
// each, weights ws) keyed by X-User-ID, with ejection on and an injected
// clock; backoff is an hour, so only the clock readmits.
func failoverProxy(t *testing.T, ws []float64, tune func(*Options)) (*Proxy, string, []*killable, *fakeClock) {
	t.Helper()
	names := []string{"a", "b", "c"}
	var ups []*killable
	var specs []CellSpec
	for i, w := range ws {
		k := newKillable(t, cellNamed(names[i]))
		ups = append(ups, k)
		specs = append(specs, CellSpec{Name: names[i], Weight: w, Endpoints: []string{k.addr}})
	}
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	opts.EjectAfter, opts.EjectBackoff, opts.EjectBackoffMax = 3, time.Hour, time.Hour
	if tune != nil {
		tune(&opts)
	}
	clk := newFakeClock()
	p, addr := startProxy(t, opts, specs, Hooks{Now: clk.now})
	return p, addr, ups, clk
}

// served sends one GET per user and returns the cell that answered each
// (the X-Cellgate-Cell header) and how many were not 200.
func served(t *testing.T, c *fasthttp.HostClient, method string, users int) (cells []string, failed int) {
	t.Helper()
	for u := range users {
		r := do(t, c, method, "/", nil, "X-User-ID", fmt.Sprint("user-", u))
		if r.StatusCode() != 200 {
			failed++
		}
		cells = append(cells, string(r.Header.Peek("X-Cellgate-Cell")))
	}
	return cells, failed
}

// TestCellFailoverAndReturn: killing every endpoint of cell b sends each of
// b's users to its next rendezvous choice (as the balancer computes it),
// moves nobody else, fails no GET; when b is back each of its users returns
// to it and nobody else moves.
func TestCellFailoverAndReturn(t *testing.T) {
	const users = 300
	p, addr, ups, clk := failoverProxy(t, []float64{100, 100, 100}, nil)
	c := newClient(t, addr)
	home, failed := served(t, c, "GET", users)
	if failed != 0 {
		t.Fatalf("%d failures with every cell up", failed)
	}
	tab := p.snap.Load().table
	var skip balancer.CellSet
	skip.Add(1)

	ups[1].kill()
	during, failed := served(t, c, "GET", users)
	moved, others := 0, 0
	for u := range users {
		want := home[u]
		if home[u] == "b" {
			want = []string{"a", "b", "c"}[tab.PickExcept(tab.Hash(fmt.Appendf(nil, "user-%d", u)), &skip)]
			moved++
		}
		if during[u] != want {
			t.Errorf("user %d: served by %q while b is down, want %q (home %q)", u, during[u], want, home[u])
		}
		if home[u] != "b" && during[u] != home[u] {
			others++
		}
	}
	if st := p.Status()[1]; st.Up || st.Failovers == 0 {
		t.Errorf("status of b: up=%v failovers=%d, want down with failovers", st.Up, st.Failovers)
	}
	t.Logf("cell b down: %d of %d users moved to their failover cells, %d other users moved, %d GETs failed", moved, users, others, failed)
	if failed != 0 || moved == 0 || others != 0 {
		t.Fatalf("failed=%d moved=%d others=%d, want 0, >0, 0", failed, moved, others)
	}

	ups[1].revive()
	clk.advance(time.Hour + time.Second) // the ejection runs out; b is probed by traffic again
	after, failed := served(t, c, "GET", users)
	back := 0
	for u := range users {
		if after[u] != home[u] {
			t.Errorf("user %d: on %q after b returned, want %q", u, after[u], home[u])
		} else if home[u] == "b" {
			back++
		}
	}
	t.Logf("cell b back: %d of %d users returned, %d failed", back, moved, failed)
	if failed != 0 || !p.Status()[1].Up {
		t.Fatalf("failed=%d up=%v after b returned", failed, p.Status()[1].Up)
	}
}

// TestFailoverPanicThreshold: with two of three equal cells dead, 67 % of
// the weight is down, above the 50 % panic threshold: nobody fails over and
// the survivor is not crushed. At 100 % the same outage fails everyone over.
func TestFailoverPanicThreshold(t *testing.T) {
	for _, tc := range []struct {
		panicPct float64
		wantOnC  bool
	}{{50, false}, {100, true}} {
		t.Run(fmt.Sprint("panic=", tc.panicPct), func(t *testing.T) {
			p, addr, ups, _ := failoverProxy(t, []float64{1, 1, 1}, func(o *Options) { o.FailoverPanic = tc.panicPct })
			c := newClient(t, addr)
			home, _ := served(t, c, "GET", 90)
			ups[0].kill()
			ups[1].kill()
			served(t, c, "GET", 90) // eject the dead endpoints
			during, failed := served(t, c, "GET", 90)
			onC := 0
			for u, cell := range during {
				if cell == "c" {
					onC++
				} else if cell != home[u] {
					t.Fatalf("user %d moved %q → %q", u, home[u], cell)
				}
			}
			t.Logf("panic threshold %v%%, two of three cells down: %d of 90 users on c, %d failed", tc.panicPct, onC, failed)
			if tc.wantOnC && (onC != 90 || failed != 0) {
				t.Fatalf("want everyone failed over to c: onC=%d failed=%d", onC, failed)
			}
			if !tc.wantOnC && (failed == 0 || p.Status()[0].Panics == 0) {
				t.Fatalf("want the panic threshold to hold: failed=%d panics=%d", failed, p.Status()[0].Panics)
			}
		})
	}
}

// TestInflightRequestsWhenCellDies: requests in flight on b when it dies —
// a GET is retried once on its failover cell and answered; a POST may have
// been read, so it fails 502 and is counted.
func TestInflightRequestsWhenCellDies(t *testing.T) {
	arrived := make(chan struct{}, 4)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	block := newKillable(t, func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-hold
	})
	other := newKillable(t, cellNamed("a"))
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	opts.EjectAfter, opts.EjectBackoff = 3, time.Hour
	p, addr := startProxy(t, opts, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{other.addr}},
		{Name: "b", Weight: 1, Endpoints: []string{block.addr}},
	}, Hooks{})
	tab := p.snap.Load().table
	user := ""
	for u := 0; user == ""; u++ {
		if k := fmt.Sprint("user-", u); tab.PickKey([]byte(k)) == 1 {
			user = k
		}
	}
	c := newClient(t, addr)
	for _, tc := range []struct {
		method string
		status int
		cell   string
	}{{"GET", 200, "a"}, {"POST", 502, "b"}} {
		res := make(chan *fasthttp.Response, 1)
		var body []byte
		if tc.method == "POST" {
			body = []byte("x")
		}
		go func() { res <- do(t, c, tc.method, "/", body, "X-User-ID", user) }()
		<-arrived
		block.kill()
		r := <-res
		if r.StatusCode() != tc.status || string(r.Header.Peek("X-Cellgate-Cell")) != tc.cell {
			t.Fatalf("%s in flight when b died: %d from %q, want %d from %q", tc.method, r.StatusCode(), r.Header.Peek("X-Cellgate-Cell"), tc.status, tc.cell)
		}
		block.revive()
		p.mu.Lock()
		for _, e := range p.endpoints { // readmit b for the next case
			p.health.success(e)
		}
		p.mu.Unlock()
		p.refreshAll()
	}
	if st := p.Status()[1]; st.InflightFailed != 1 {
		t.Fatalf("inflight_failed = %d, want 1 (the POST)", st.InflightFailed)
	}
}

// TestFailoverSkipsRolloutTargets: a cell excluded from failover (a running
// rollout's target) receives none of a down cell's users.
func TestFailoverSkipsRolloutTargets(t *testing.T) {
	p, addr, ups, _ := failoverProxy(t, []float64{1, 1, 1}, func(o *Options) { o.FailoverPanic = 100 })
	p.SetFailoverExcluded([]string{"c"})
	c := newClient(t, addr)
	home, _ := served(t, c, "GET", 120)
	ups[1].kill()
	during, failed := served(t, c, "GET", 120)
	for u := range during {
		if home[u] == "b" && during[u] != "a" {
			t.Fatalf("user %d of b served by %q, want a (c is a rollout target)", u, during[u])
		}
	}
	if failed != 0 {
		t.Fatalf("%d failed", failed)
	}
}

// TestMaxEjectionPercent: 5xx alone eject at most half of a cell's four
// endpoints; a refused connection is not capped.
func TestMaxEjectionPercent(t *testing.T) {
	bad := func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(500) }
	var eps []string
	for range 4 {
		eps = append(eps, startUpstream(t, bad))
	}
	opts := testOptions()
	opts.EjectAfter, opts.EjectBackoff = 1, time.Hour
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: eps}}, Hooks{})
	c := newClient(t, addr)
	for range 40 {
		get(t, c, "/")
	}
	out := 0
	for _, e := range p.Status()[0].Endpoints {
		if !e.Up {
			out++
		}
	}
	if out != 2 || !p.Status()[0].Up {
		t.Fatalf("%d of 4 endpoints ejected by 5xx (cell up=%v), want 2 (50 %%)", out, p.Status()[0].Up)
	}
}

// TestFailoverBypassesPins: sessions pinned to a cell that goes down are
// served by their failover cell without a pin being made there, and keep
// their pin: when the cell is back they are on it again.
func TestFailoverBypassesPins(t *testing.T) {
	clk := newTestClock()
	stable := newKillable(t, cellNamed("stable"))
	opts := pinOptions()
	opts.EjectAfter, opts.EjectBackoff = 3, time.Hour
	opts.FailoverPanic = 100 // stable is 75 % of the weight
	p, addr := startProxy(t, opts, []CellSpec{
		{Name: "stable", Weight: 95, Endpoints: []string{stable.addr}},
		{Name: "canary", Weight: 5, Endpoints: []string{okUpstream(t, nil)}},
	}, Hooks{Now: clk.Now})
	c := newClient(t, addr)
	const n = 300
	for i := range n {
		cellOf(t, c, fmt.Sprintf("user-%d", i))
	}
	clk.advance(time.Second)
	p.SetWeights(map[string]float64{"stable": 75, "canary": 25})
	var pinned []string // users whose key moved to canary but who stay on stable
	for i := range n {
		k := fmt.Sprintf("user-%d", i)
		if p.snap.Load().table.PickKey([]byte(k)) == 1 && cellOf(t, c, k) == "stable" {
			pinned = append(pinned, k)
		}
	}
	// ristretto applies Sets asynchronously and may drop one; the key's
	// slot then pins it again at its next request (balancer's newPin). So
	// request the pinned sessions until every pin is in the cache: a pin
	// left to be made again would be made by the requests below that
	// reach stable before it is known down (EjectAfter), and the count
	// would grow (seen under -race: 50 → 53).
	testwait.For(t, 10*time.Second, "every pinned session's pin in the cache", func() bool {
		p.snap.Load().sessions.pins.Wait()
		if p.Pins()["stable"] == int64(len(pinned)) {
			return true
		}
		for _, k := range pinned {
			if got := cellOf(t, c, k); got != "stable" {
				t.Fatalf("%s pinned to stable now served by %q", k, got)
			}
		}
		return false
	})
	pinsBefore := p.Pins()
	if len(pinned) == 0 || pinsBefore["stable"] == 0 {
		t.Fatalf("no session pinned to stable (%d, %v); the test needs some", len(pinned), pinsBefore)
	}

	stable.kill()
	for _, k := range pinned {
		get(t, c, "/", "X-User-ID", k) // the refused connects take stable down
	}
	for _, k := range pinned {
		if got := cellOf(t, c, k); got != "canary" {
			t.Fatalf("%s pinned to dead stable served by %q, want its failover cell canary", k, got)
		}
	}
	if got := p.Pins(); got["canary"] != 0 || got["stable"] != pinsBefore["stable"] {
		t.Fatalf("pins after failover %v, before %v: failover must make none and keep the old", got, pinsBefore)
	}

	stable.revive()
	p.mu.Lock()
	for _, e := range p.endpoints {
		p.health.success(e)
	}
	p.mu.Unlock()
	p.refreshAll()
	for _, k := range pinned {
		if got := cellOf(t, c, k); got != "stable" {
			t.Fatalf("%s on %q after stable came back, want its pinned cell stable", k, got)
		}
	}
}

// TestFailoverPickAllocs: routing around a down cell allocates nothing.
func TestFailoverPickAllocs(t *testing.T) {
	p, err := New(testOptions(), 42, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}},
		{Name: "b", Weight: 1, Endpoints: []string{"127.0.0.1:2"}},
		{Name: "c", Weight: 1, Endpoints: []string{"127.0.0.1:3"}},
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	snap := p.snap.Load()
	snap.cells[1].endpoints[0].checkDown.Store(true)
	snap.cells[1].refresh(p.health.nowNano())
	st := &reqState{p: p}
	h := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		h = h*6364136223846793005 + 1442695040888963407
		if idx := snap.table.Pick(h); snap.cells[idx].state.down.Load() {
			if p.routeAround(st, snap, h, idx) == 1 {
				t.Fatal("routed to the down cell")
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per failover pick", allocs)
	}
}

// TestCheckFailedEndpointRetriedInCell: a request held by an endpoint
// that then fails its active check (a hung upstream: the request times
// out, no connection error says it is gone) is retried on the rest of
// its cell when that is safe — a GET is answered by the other endpoint —
// and a POST, which may have been executed, fails and is counted.
func TestCheckFailedEndpointRetriedInCell(t *testing.T) {
	arrived := make(chan struct{}, 4)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	var sick atomic.Bool
	hung := newKillable(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			if sick.Load() {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			}
			return
		}
		arrived <- struct{}{}
		<-hold
	})
	other := newKillable(t, cellNamed("other"))
	opts := testOptions()
	opts.UpstreamReadTimeout = 5 * time.Second // the held request's end; the check fails it well before
	// The sick endpoint fails its checks fast (503s); the generous probe
	// timeout keeps a loaded machine from failing the healthy one's.
	hc := &HealthCheck{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: 2 * time.Second, Unhealthy: 2, Healthy: 1}
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{hung.addr, other.addr}, Health: hc}}, Hooks{})
	checkDown := func(want bool) func() bool {
		return func() bool { return p.Status()[0].Endpoints[0].CheckDown == want }
	}
	c := newClient(t, addr)
	for _, tc := range []struct {
		method string
		status int
		body   string
	}{{"GET", 200, "other"}, {"POST", 504, ""}} {
		// Send until one request is held by the hung endpoint (endpoint
		// choice is random); those the other endpoint answers are fine.
		var res chan *fasthttp.Response
		var body []byte // a GET's retry needs no body byte read; a POST's must fail anyway
		if tc.method == "POST" {
			body = []byte("x")
		}
		for held := false; !held; {
			res = make(chan *fasthttp.Response, 1)
			go func() { res <- do(t, c, tc.method, "/", body) }()
			select {
			case <-arrived:
				held = true
			case r := <-res:
				if r.StatusCode() != 200 {
					t.Fatalf("%s before the check failed: %d", tc.method, r.StatusCode())
				}
			}
		}
		sick.Store(true)
		testwait.For(t, 10*time.Second, "the hung endpoint out by its check", checkDown(true))
		r := <-res
		if r.StatusCode() != tc.status || (tc.body != "" && string(r.Body()) != tc.body) {
			t.Fatalf("%s held by an endpoint that failed its check: %d %q, want %d %q", tc.method, r.StatusCode(), r.Body(), tc.status, tc.body)
		}
		sick.Store(false)
		testwait.For(t, 10*time.Second, "the endpoint back by its check", checkDown(false))
	}
	if st := p.Status()[0]; st.InflightFailed != 1 {
		t.Fatalf("inflight_failed = %d, want 1 (the POST)", st.InflightFailed)
	}
}

// TestDeadEndpointReadmittedWhenBack: a cell whose only endpoint died is
// up again soon after the endpoint is back, though its ejection (an hour
// here, on a clock that never moves) has not run out: the node dials the
// dead endpoint itself and readmits it on the first connect that
// succeeds, so its users return without waiting for the backoff.
func TestDeadEndpointReadmittedWhenBack(t *testing.T) {
	p, addr, ups, _ := failoverProxy(t, []float64{100, 100, 100}, nil)
	c := newClient(t, addr)
	home, _ := served(t, c, "GET", 60)
	ups[1].kill()
	served(t, c, "GET", 60) // b's users find it dead
	if p.Status()[1].Up {
		t.Fatal("b up with its only endpoint dead")
	}
	ups[1].revive()
	start := time.Now()
	testwait.For(t, 10*time.Second, "b readmitted", func() bool { return p.Status()[1].Up })
	t.Logf("b readmitted %v after its endpoint was back (probe every %v)", time.Since(start).Round(time.Millisecond), p.probeEvery())
	after, failed := served(t, c, "GET", 60)
	for u := range after {
		if after[u] != home[u] {
			t.Errorf("user %d on %q after b was readmitted, want %q", u, after[u], home[u])
		}
	}
	if failed != 0 {
		t.Fatalf("%d GETs failed after b was readmitted", failed)
	}
}

// TestPassingCheckReadmitsEjected: an endpoint ejected by passive evidence
// between active checks (the outage was too short for `unhealthy` failed
// checks in a row) is readmitted by the next passing check, not after the
// ejection's backoff (an hour here).
func TestPassingCheckReadmitsEjected(t *testing.T) {
	up := newKillable(t, cellNamed("a"))
	opts := testOptions()
	opts.EjectAfter, opts.EjectBackoff, opts.EjectBackoffMax = 1, time.Hour, time.Hour
	hc := &HealthCheck{Interval: 50 * time.Millisecond, Timeout: time.Second, Unhealthy: 1 << 20, Healthy: 1}
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up.addr}, Health: hc}}, Hooks{})
	c := newClient(t, addr)
	up.kill()
	if r := get(t, c, "/"); r.StatusCode() != 502 || p.Status()[0].Up {
		t.Fatalf("request to the dead endpoint: %d, cell up=%v; want 502 and the endpoint ejected", r.StatusCode(), p.Status()[0].Up)
	}
	if p.Status()[0].Endpoints[0].CheckDown {
		t.Fatal("the check took the endpoint out; this test needs passive evidence alone")
	}
	up.revive()
	testwait.For(t, 10*time.Second, "the endpoint readmitted by a passing check", func() bool { return p.Status()[0].Up })
	if r := get(t, c, "/"); r.StatusCode() != 200 {
		t.Fatalf("after readmission: %d", r.StatusCode())
	}
}

// TestUnreachableCellWithoutEvidence: with passive ejection off (active
// checks only, and none failed yet), a request whose every connect to its
// cell is refused — nothing was sent, so repeating it is safe whatever its
// method — is served by its failover cell, once; the cell stays up (this
// is the request's retry, not a routing change).
func TestUnreachableCellWithoutEvidence(t *testing.T) {
	opts := testOptions() // EjectAfter 0: no passive ejection
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	p, addr := startProxy(t, opts, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{newKillable(t, cellNamed("a")).addr}},
		{Name: "b", Weight: 1, Endpoints: []string{deadAddr(t), deadAddr(t), deadAddr(t)}},
	}, Hooks{})
	tab := p.snap.Load().table
	c := newClient(t, addr)
	served := 0
	for u := range 40 {
		k := fmt.Sprint("user-", u)
		if tab.PickKey([]byte(k)) != 1 {
			continue
		}
		for _, m := range []string{"GET", "POST"} {
			r := do(t, c, m, "/", []byte("x"), "X-User-ID", k)
			if r.StatusCode() != 200 || string(r.Body()) != "a" {
				t.Fatalf("%s for b's user %s with b unreachable: %d %q, want 200 from a", m, k, r.StatusCode(), r.Body())
			}
			served++
		}
	}
	st := p.Status()[1]
	t.Logf("%d requests of b's users served by a; b up=%v, failovers %d", served, st.Up, st.Failovers)
	if served == 0 || !st.Up || st.Failovers != uint64(served) {
		t.Fatalf("served %d, b up=%v failovers=%d: want b up and every request counted", served, st.Up, st.Failovers)
	}
}
