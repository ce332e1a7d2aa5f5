package discovery

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/discovery/dnstest"
	"github.com/cellgate/cellgate/internal/testwait"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ok      bool
		wantErr bool
		want    Target
	}{
		{"127.0.0.1:80", false, false, Target{}},
		{"dns:app.default.svc.cluster.local:8080", true, false, Target{Raw: "dns:app.default.svc.cluster.local:8080", Kind: KindDNS, Name: "app.default.svc.cluster.local", Port: 8080}},
		{"srv:_http._tcp.app.service.consul", true, false, Target{Raw: "srv:_http._tcp.app.service.consul", Kind: KindSRV, Name: "_http._tcp.app.service.consul"}},
		{"dns:app", true, true, Target{}},
		{"dns:app:0", true, true, Target{}},
		{"dns:app:+80", true, true, Target{}},
		{"dns::80", true, true, Target{}},
		{"dns:bad name:80", true, true, Target{}},
		{"srv:app.consul", true, true, Target{}},
		{"srv:_http.app", true, true, Target{}},
	} {
		got, ok, err := Parse(tc.in)
		if ok != tc.ok || (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("Parse(%q) = %+v, %v, %v", tc.in, got, ok, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"dns:a.b:80", "srv:_x._tcp.a.b", "1.2.3.4:5", "dns:", "srv:", "dns:a:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, ok, err := Parse(s)
		if !ok && err != nil {
			t.Fatalf("not a discovery entry but an error: %v", err)
		}
		if ok && err == nil {
			if tg.Raw != s || tg.Name == "" || (tg.Kind == KindDNS && (tg.Port < 1 || tg.Port > 65535)) {
				t.Fatalf("accepted %q as %+v", s, tg)
			}
			if again, _, err2 := Parse(tg.Raw); err2 != nil || again != tg {
				t.Fatalf("not stable: %+v then %+v (%v)", tg, again, err2)
			}
		}
	})
}

// TestServerResolves: A+AAAA become one endpoint each at the port, SRV
// targets are resolved to addresses at their ports, and the shortest TTL
// is reported.
func TestServerResolves(t *testing.T) {
	dsrv := dnstest.Start(t)
	dsrv.Set(t, "app.test", "app.test. 30 IN A 127.0.0.2", "app.test. 10 IN A 127.0.0.3", "app.test. 20 IN AAAA ::1")
	dsrv.Set(t, "_http._tcp.app.test", "_http._tcp.app.test. 7 IN SRV 0 0 9001 n1.test.", "_http._tcp.app.test. 7 IN SRV 0 0 9002 n2.test.")
	dsrv.Set(t, "n1.test", "n1.test. 60 IN A 127.0.0.4")
	dsrv.Set(t, "n2.test", "n2.test. 60 IN A 127.0.0.5")
	r := Server{Addr: dsrv.Addr, Timeout: time.Second}
	ctx := context.Background()

	a, err := r.Resolve(ctx, mustParse(t, "dns:app.test:8080"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.2:8080", "127.0.0.3:8080", "[::1]:8080"}; !slices.Equal(a.Addrs, want) || a.TTL != 10*time.Second {
		t.Fatalf("dns: %v ttl %v, want %v ttl 10s", a.Addrs, a.TTL, want)
	}
	a, err = r.Resolve(ctx, mustParse(t, "srv:_http._tcp.app.test"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.4:9001", "127.0.0.5:9002"}; !slices.Equal(a.Addrs, want) || a.TTL != 7*time.Second {
		t.Fatalf("srv: %v ttl %v, want %v ttl 7s", a.Addrs, a.TTL, want)
	}
	if _, err := r.Resolve(ctx, mustParse(t, "dns:missing.test:80")); err == nil {
		t.Fatal("NXDOMAIN resolved without error")
	}
}

func mustParse(t *testing.T, s string) Target {
	t.Helper()
	tg, ok, err := Parse(s)
	if !ok || err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return tg
}

// TestWatcherFollowsRecordsAndKeepsLastGood: a changed record set is
// picked up and announced; with the resolver down the last good set stays
// and the failure is reported; past the grace the set is dropped.
func TestWatcherFollowsRecordsAndKeepsLastGood(t *testing.T) {
	dsrv := dnstest.Start(t)
	dsrv.Set(t, "app.test", "app.test. 1 IN A 127.0.0.2")
	var changes atomic.Int64
	w := New(Config{Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond},
		Server{Addr: dsrv.Addr, Timeout: 200 * time.Millisecond}, Hooks{Changed: func() { changes.Add(1) }})
	tg := mustParse(t, "dns:app.test:80")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.SetTargets(ctx, []Target{tg})
	if got := w.Addrs(tg.Raw); !slices.Equal(got, []string{"127.0.0.2:80"}) {
		t.Fatalf("after SetTargets: %v", got)
	}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	dsrv.Set(t, "app.test", "app.test. 1 IN A 127.0.0.2", "app.test. 1 IN A 127.0.0.3")
	testwait.For(t, 10*time.Second, "the added address", func() bool { return len(w.Addrs(tg.Raw)) == 2 && changes.Load() >= 1 })

	dsrv.Stop()
	testwait.For(t, 10*time.Second, "the failure to be reported", func() bool { return w.Status()[0].Error != "" })
	if got := w.Addrs(tg.Raw); len(got) != 2 {
		t.Fatalf("resolver down: set %v, want the last good two", got)
	}
	st := w.Status()[0]
	t.Logf("resolver down: kept %v, reported %q", st.Endpoints, st.Error)
	if st.Failures == 0 || st.Since.IsZero() || st.Expired {
		t.Fatalf("status %+v", st)
	}
}

// TestWatcherGraceDropsSet: with a grace, a set that cannot be confirmed
// for that long is dropped (and announced).
func TestWatcherGraceDropsSet(t *testing.T) {
	var fail atomic.Bool
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	res := resolverFunc(func(context.Context, Target) (Answer, error) {
		if fail.Load() {
			return Answer{}, ErrLookup
		}
		return Answer{Addrs: []string{"10.0.0.1:80"}}, nil
	})
	w := New(Config{Interval: time.Second, Grace: time.Minute}, res, Hooks{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	tg := mustParse(t, "dns:x.test:80")
	w.SetTargets(context.Background(), []Target{tg})
	fail.Store(true)
	clock.Add(int64(30 * time.Second))
	if w.round(context.Background()) || len(w.Addrs(tg.Raw)) != 1 {
		t.Fatal("set dropped within the grace")
	}
	clock.Add(int64(31 * time.Second))
	if !w.round(context.Background()) || len(w.Addrs(tg.Raw)) != 0 || !w.Status()[0].Expired {
		t.Fatalf("set kept past the grace: %+v", w.Status()[0])
	}
	fail.Store(false)
	clock.Add(int64(time.Second))
	if !w.round(context.Background()) || len(w.Addrs(tg.Raw)) != 1 {
		t.Fatal("set not restored by a good lookup")
	}
}

// TestRefreshBoundedByTTL: a short TTL shortens the re-resolve period,
// never below a second, and a long one never lengthens it.
func TestRefreshBoundedByTTL(t *testing.T) {
	w := New(Config{Interval: 30 * time.Second}, nil, Hooks{})
	for ttl, want := range map[time.Duration]time.Duration{
		0: 30 * time.Second, 5 * time.Second: 5 * time.Second, time.Millisecond: time.Second, time.Hour: 30 * time.Second,
	} {
		if got := w.refresh(ttl); got != want {
			t.Errorf("ttl %v: refresh %v, want %v", ttl, got, want)
		}
	}
}

type resolverFunc func(context.Context, Target) (Answer, error)

func (f resolverFunc) Resolve(ctx context.Context, t Target) (Answer, error) { return f(ctx, t) }

// TestSRVWeights: each address takes its record's priority and weight; a
// target with several addresses splits its weight; an address named twice
// keeps the lowest priority and adds that priority's weights.
func TestSRVWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []srvTarget
		want map[string]Weight
	}{
		{"one each", []srvTarget{{1, 10, []string{"a:1"}}, {2, 30, []string{"b:1"}}},
			map[string]Weight{"a:1": {1, 10}, "b:1": {2, 30}}},
		{"split over addresses", []srvTarget{{0, 30, []string{"a:1", "b:1", "c:1"}}},
			map[string]Weight{"a:1": {0, 10}, "b:1": {0, 10}, "c:1": {0, 10}}},
		{"lowest priority wins", []srvTarget{{5, 10, []string{"a:1"}}, {1, 2, []string{"a:1"}}, {9, 7, []string{"a:1"}}},
			map[string]Weight{"a:1": {1, 2}}},
		{"same priority adds", []srvTarget{{1, 10, []string{"a:1"}}, {1, 5, []string{"a:1"}}},
			map[string]Weight{"a:1": {1, 15}}},
		{"no addresses", []srvTarget{{1, 10, nil}}, map[string]Weight{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := srvWeights(tc.in); !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestServerResolvesSRVPriorityAndWeight: a configured resolver reports
// each SRV target's priority and weight with its addresses, and so does
// the watcher — a change of weight alone is a change.
func TestServerResolvesSRVPriorityAndWeight(t *testing.T) {
	dsrv := dnstest.Start(t)
	dsrv.Set(t, "_http._tcp.w.test", "_http._tcp.w.test. 5 IN SRV 10 60 9001 n1.test.",
		"_http._tcp.w.test. 5 IN SRV 10 20 9002 n2.test.", "_http._tcp.w.test. 5 IN SRV 20 0 9003 n3.test.")
	dsrv.Set(t, "n1.test", "n1.test. 60 IN A 127.0.0.4")
	dsrv.Set(t, "n2.test", "n2.test. 60 IN A 127.0.0.5", "n2.test. 60 IN A 127.0.0.6")
	dsrv.Set(t, "n3.test", "n3.test. 60 IN A 127.0.0.7")
	tg := mustParse(t, "srv:_http._tcp.w.test")
	r := Server{Addr: dsrv.Addr, Timeout: time.Second}
	a, err := r.Resolve(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Weight{"127.0.0.4:9001": {10, 60}, "127.0.0.5:9002": {10, 10}, "127.0.0.6:9002": {10, 10}, "127.0.0.7:9003": {20, 0}}
	if !maps.Equal(a.Weights, want) || len(a.Addrs) != 4 {
		t.Fatalf("srv weights %v (addrs %v), want %v", a.Weights, a.Addrs, want)
	}
	changed := make(chan struct{}, 8)
	w := New(Config{Interval: 20 * time.Millisecond}, r, Hooks{Changed: func() { changed <- struct{}{} }})
	w.SetTargets(context.Background(), []Target{tg})
	if got := w.Weights(tg.Raw); !maps.Equal(got, want) {
		t.Fatalf("watcher weights %v, want %v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	dsrv.Set(t, "_http._tcp.w.test", "_http._tcp.w.test. 5 IN SRV 10 60 9001 n1.test.",
		"_http._tcp.w.test. 5 IN SRV 10 20 9002 n2.test.", "_http._tcp.w.test. 5 IN SRV 5 0 9003 n3.test.")
	testwait.For(t, 10*time.Second, "the priority change announced", func() bool {
		return w.Weights(tg.Raw)["127.0.0.7:9003"] == Weight{5, 0}
	})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a priority change was not announced")
	}
}
