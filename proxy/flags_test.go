package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/slo"
)

// cohortRecorder counts what each variant's cohort recorded.
type cohortRecorder struct {
	mu sync.Mutex
	n  map[string]int // cell name → requests
}

func (c *cohortRecorder) get(name string) flags.Recorder { return cohortRec{c, name} }

func (c *cohortRecorder) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

type cohortRec struct {
	c    *cohortRecorder
	name string
}

func (r cohortRec) Record(int, bool, time.Duration, time.Duration) {
	r.c.mu.Lock()
	r.c.n[r.name]++
	r.c.mu.Unlock()
}

// rankerOff is a boolean flag whose split gives everyone "off", so a
// request reaches "on" only through an override.
var rankerOff = flags.Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{1, 0}, Control: "off", Boolean: true}

// flagEngine is a flag engine holding defs whose cohorts are counted by
// the returned recorder.
func flagEngine(t *testing.T, defs ...flags.Def) (*flags.Engine, *cohortRecorder) {
	t.Helper()
	rec := &cohortRecorder{n: map[string]int{}}
	e := flags.NewEngine(42, rec.get)
	if err := e.SetDefs(defs, nil); err != nil {
		t.Fatal(err)
	}
	return e, rec
}

// flagProxy starts a proxy with one cell on up and the given flags.
func flagProxy(t *testing.T, up string, defs ...flags.Def) (*Proxy, string, *cohortRecorder) {
	t.Helper()
	e, rec := flagEngine(t, defs...)
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	p, addr := startProxy(t, opts, []CellSpec{{Name: "a", Endpoints: []string{up}, Weight: 1}}, Hooks{Flags: e})
	return p, addr, rec
}

// TestFlagsHeaderReplacesClientCopy: the upstream receives exactly one
// X-Cellgate-Flags, cellgate's own, with every flag's variant; the
// client's copies (any case) are gone, and the rest of the head is intact.
func TestFlagsHeaderReplacesClientCopy(t *testing.T) {
	r := startRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	_, addr, _ := flagProxy(t, r.addr,
		flags.Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{0, 1}, Control: "off", Boolean: true},
		flags.Def{Name: "checkout", Variants: []string{"classic", "express"}, Weights: []float64{1, 0}, Control: "classic"})
	got := rawExchange(t, addr, "GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-User-ID: u1\r\nX-Cellgate-Flags: new-ranker=off\r\nx-cellgate-flags: admin=on\r\nX-Keep: 1\r\nConnection: close\r\n\r\n", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("response %q", got)
	}
	head, _ := headOf(r.next(t))
	n := 0
	for _, l := range fieldLines(head) {
		if strings.HasPrefix(strings.ToLower(l), "x-cellgate-flags:") {
			n++
			if l != "X-Cellgate-Flags: new-ranker=on, checkout=classic" {
				t.Errorf("upstream got %q", l)
			}
		}
	}
	if n != 1 || !hasField(head, "X-Keep: 1") || !strings.HasPrefix(head, "GET /p?q=1 HTTP/1.1\r\n") {
		t.Errorf("upstream head (%d flag fields):\n%s", n, head)
	}
}

// TestNoFlagsStillRemovesClientCopy: with no flag configured a client's
// X-Cellgate-Flags is still never forwarded (an upstream must be able to
// trust the field).
func TestNoFlagsStillRemovesClientCopy(t *testing.T) {
	r := startRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	_, addr := startProxy(t, testOptions(), []CellSpec{{Name: "a", Endpoints: []string{r.addr}, Weight: 1}}, Hooks{})
	rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nX-Cellgate-Flags: new-ranker=on\r\nConnection: close\r\n\r\n", nil)
	if head, _ := headOf(r.next(t)); hasFieldName(head, "X-Cellgate-Flags") {
		t.Errorf("a client's X-Cellgate-Flags reached the upstream:\n%s", head)
	}
}

// TestExposureMarked: a marked flag's cohort counts only responses that
// name it in X-Cellgate-Exposed, an "all" flag counts every request, and
// the client never sees X-Cellgate-Exposed.
func TestExposureMarked(t *testing.T) {
	var mark sync.Map
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		u := ctx.Request.Header.Peek("X-User-ID")
		if u == nil {
			u = ctx.Request.Header.Peek("X-User-Id") // the test client normalises names
		}
		if _, ok := mark.Load(string(u)); ok {
			ctx.Response.Header.Set("X-Cellgate-Exposed", "search, unknown;x=1")
		}
		ctx.SetBodyString("ok")
	})
	_, addr, rec := flagProxy(t, up,
		flags.Def{Name: "search", Variants: []string{"a", "b"}, Weights: []float64{1, 0}, Control: "a", Marked: true},
		flags.Def{Name: "all", Variants: []string{"x", "y"}, Weights: []float64{0, 1}, Control: "x"})
	c := newClient(t, addr)
	mark.Store("m1", true)
	mark.Store("m2", true)
	for _, u := range []string{"m1", "u1", "m2", "u2", "u3"} {
		resp := get(t, c, "/", "X-User-ID", u)
		if v := resp.Header.Peek("X-Cellgate-Exposed"); v != nil {
			t.Errorf("client got X-Cellgate-Exposed: %q", v)
		}
	}
	testwait.For(t, 10*time.Second, "5 requests recorded", func() bool { return rec.count("all=y") == 5 })
	if n := rec.count("search=a"); n != 2 {
		t.Errorf("marked flag counted %d requests, want the 2 marked", n)
	}
}

// BenchmarkProxyGETFlags is BenchmarkProxyGET's 16-byte case with 0 and 8
// flags configured: the difference is what flags cost per proxied request
// (the bound: under 5 %, 0 allocations).
func BenchmarkProxyGETFlags(b *testing.B) {
	counters := NewCounters()
	benchProxyGETFlags(b, counters.Recorder, func(name string) flags.Recorder { return counters.Recorder(name) })
}

// BenchmarkProxyGETFlagsSLO is BenchmarkProxyGETFlags with the SLO
// engine's recorders for the cells and the cohorts, as a node has them:
// what recording a request in eight cohorts costs.
func BenchmarkProxyGETFlagsSLO(b *testing.B) {
	reg := slo.NewRegistry(slo.DefaultConfig(), nil)
	benchProxyGETFlags(b, func(cell string) CellRecorder { return reg.Cell(cell) }, func(name string) flags.Recorder { return reg.Cell(name) })
}

func benchProxyGETFlags(b *testing.B, cellRec func(string) CellRecorder, cohortRec func(string) flags.Recorder) {
	for _, n := range []int{0, 8} {
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			up := startUpstream(b, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("0123456789abcdef") })
			opts := DefaultOptions()
			opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceIP}}
			e := flags.NewEngine(42, cohortRec)
			var defs []flags.Def
			for i := range n {
				defs = append(defs, flags.Def{Name: fmt.Sprint("flag-", i), Variants: []string{"off", "on"}, Weights: []float64{90, 10}, Control: "off", Boolean: true})
			}
			if err := e.SetDefs(defs, nil); err != nil {
				b.Fatal(err)
			}
			_, addr := startProxy(b, opts, benchCells(up), Hooks{Recorder: cellRec, Flags: e})
			benchGET(b, addr, "Accept", "*/*")
		})
	}
}

// TestAccessLogCarriesFlags: the access log line names the request's
// variants exactly as the upstream received them.
func TestAccessLogCarriesFlags(t *testing.T) {
	up := okUpstream(t, nil)
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.New(accesslog.Config{Path: path, Sample: 1, Secret: []byte("s")}, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	e := flags.NewEngine(42, nil)
	if err := e.SetDefs([]flags.Def{{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{0, 1}, Control: "off", Boolean: true}}, nil); err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{AccessLog: al, Flags: e})
	get(t, newClient(t, addr), "/f", "X-User-ID", "u1")
	testwait.For(t, 10*time.Second, "1 line", func() bool { return al.Written() == 1 })
	raw, _ := os.ReadFile(path)
	var line struct{ Flags string }
	if err := json.Unmarshal(bytes.TrimSpace(raw), &line); err != nil || line.Flags != "new-ranker=on" {
		t.Errorf("access log line %s: flags %q, want new-ranker=on", raw, line.Flags)
	}
}

// TestOverrideFromTrustedProxyOnly: a trusted proxy's X-Cellgate-Override
// steers the request to the named cell and variant, is never forwarded,
// and the request is counted apart, in no cell's or variant's cohort; the
// same field from anyone else changes nothing.
func TestOverrideFromTrustedProxyOnly(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		r := startRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		e, rec := flagEngine(t, rankerOff)
		opts := testOptions()
		opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
		opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		if trusted {
			opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		counters := NewCounters()
		p, addr := startProxy(t, opts, []CellSpec{
			{Name: "a", Weight: 1, Endpoints: []string{r.addr}},
			{Name: "canary", Weight: 0, Endpoints: []string{r.addr}},
		}, Hooks{Flags: e, Recorder: counters.Recorder})
		resp := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nX-User-ID: u1\r\nx-cellgate-override: cell=canary, new-ranker=on\r\nConnection: close\r\n\r\n", nil)
		head, _ := headOf(r.next(t))
		if hasFieldName(head, "X-Cellgate-Override") {
			t.Errorf("trusted %v: the override reached the upstream:\n%s", trusted, head)
		}
		wantCell, wantFlags, wantOverrides := "a", "new-ranker=off", uint64(0)
		if trusted {
			wantCell, wantFlags, wantOverrides = "canary", "new-ranker=on", 1
		}
		if !strings.Contains(resp, "X-Cellgate-Cell: "+wantCell+"\r\n") || !hasField(head, "X-Cellgate-Flags: "+wantFlags) {
			t.Errorf("trusted %v: want cell %s and %s; response:\n%s\nupstream head:\n%s", trusted, wantCell, wantFlags, resp, head)
		}
		if p.Overrides() != wantOverrides {
			t.Errorf("trusted %v: %d overridden requests counted, want %d", trusted, p.Overrides(), wantOverrides)
		}
		if trusted {
			if n := rec.count("new-ranker=on") + rec.count("new-ranker=off"); n != 0 {
				t.Errorf("an overridden request was recorded in %d cohorts", n)
			}
		} else {
			testwait.For(t, 10*time.Second, "the request recorded", func() bool { return rec.count("new-ranker=off") == 1 })
		}
	}
}

// TestOFREPOverrideIsTargetingMatch: on the data plane, an evaluation that
// carries a trusted proxy's X-Cellgate-Override answers the forced variant
// with reason TARGETING_MATCH; without it, the split's variant.
func TestOFREPOverrideIsTargetingMatch(t *testing.T) {
	e, _ := flagEngine(t, rankerOff)
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	opts.OFREPPrefix = "/_cg"
	_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{okUpstream(t, nil)}}}, Hooks{Flags: e, OFREP: &flags.OFREP{Engine: e}})
	c := newClient(t, addr)
	for _, tc := range []struct {
		hdr                   []string
		variant, reason, want string
	}{
		{[]string{"X-User-ID", "u1"}, "off", "STATIC", "false"},
		{[]string{"X-User-ID", "u1", "X-Cellgate-Override", "new-ranker=on"}, "on", "TARGETING_MATCH", "true"},
	} {
		resp := do(t, c, "POST", "/_cg/ofrep/v1/evaluate/flags/new-ranker", []byte(`{"context":{}}`), tc.hdr...)
		var ev struct {
			Variant, Reason string
			Value           any
		}
		if err := json.Unmarshal(resp.Body(), &ev); err != nil || resp.StatusCode() != 200 || ev.Variant != tc.variant || ev.Reason != tc.reason || fmt.Sprint(ev.Value) != tc.want {
			t.Errorf("%v: %d %s", tc.hdr, resp.StatusCode(), resp.Body())
		}
	}
}
