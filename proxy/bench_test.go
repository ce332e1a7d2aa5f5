package proxy

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/balancer"
	"github.com/valyala/fasthttp"
)

// BenchmarkProxyGET measures one proxied GET end to end over loopback TCP:
// client → proxy → upstream and back, keep-alive on both hops. allocs/op
// counts the whole process (client, proxy and upstream).
func BenchmarkProxyGET(b *testing.B) {
	benchProxyGET(b, nil, Tracing{})
}

// BenchmarkProxyGETTracing is BenchmarkProxyGET with [tracing] generate:
// each request gets a started traceparent and an X-Request-Id.
func BenchmarkProxyGETTracing(b *testing.B) {
	benchProxyGET(b, nil, Tracing{Generate: true, Sample: 1})
}

// BenchmarkProxyGETAccessLog is BenchmarkProxyGET with the access log on at
// sample = 1, writing to /dev/null: the lines are formatted and written by
// the log's goroutine, and the request path still allocates nothing.
func BenchmarkProxyGETAccessLog(b *testing.B) {
	al, err := accesslog.New(accesslog.Config{Path: os.DevNull, Sample: 1}, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer al.Close()
	benchProxyGET(b, al, Tracing{})
	b.ReportMetric(float64(al.Dropped()), "dropped")
}

func benchProxyGET(b *testing.B, al *accesslog.Log, tr Tracing) {
	for _, size := range []int{16, 4 << 10, 128 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			body := make([]byte, size)
			up := startUpstream(b, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) })
			opts := DefaultOptions()
			opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceIP}}
			opts.Tracing = tr
			counters := NewCounters()
			_, addr := startProxy(b, opts, benchCells(up), Hooks{Recorder: counters.Recorder, AccessLog: al})
			benchGET(b, addr, "Accept", "*/*")
		})
	}
}

// benchCells returns two equal cells, a and b, both served by up: the
// layout of the proxied-GET benchmarks.
func benchCells(up string) []CellSpec {
	return []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
		{Name: "b", Version: "v1", Weight: 1, Endpoints: []string{up}},
	}
}

// benchGET is the loop of the proxied-GET benchmarks: it sends GET
// /bench?x=1 with X-User-ID: user-1234 and the extra header pairs (name,
// value, …) to the proxy at addr while b.Loop runs, reporting allocations;
// a failed request ends the benchmark.
func benchGET(b *testing.B, addr string, header ...string) {
	b.Helper()
	c := newClient(b, addr)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://" + addr + "/bench?x=1")
	req.Header.Set("X-User-ID", "user-1234")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// The benchmark client keeps its body buffer so its own reads do not
	// show up as allocations of the proxy.
	resp.KeepBodyBuffer = true
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
}

// BenchmarkRequestHead measures writing the upstream request head on its
// own, for a plain request and one whose Connection header names extra
// headers.
func BenchmarkRequestHead(b *testing.B) {
	for _, tc := range []struct{ name, headers string }{
		{"plain", "User-Agent: bench\r\nAccept: */*\r\nX-User-ID: u1\r\n"},
		{"hop-by-hop", "User-Agent: bench\r\nConnection: keep-alive, X-A, X-B\r\nX-A: 1\r\nX-B: 2\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.0.0.1\r\nVia: 1.0 lb\r\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			raw := "GET /p HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n"
			src, ok := parseRequest(raw)
			if !ok {
				b.Fatal("parse")
			}
			var s scrub
			var head []byte
			in := headInfo{peer: netip.MustParseAddr("192.0.2.1")}
			b.ReportAllocs()
			for b.Loop() {
				head = s.appendRequestHead(head[:0], &src.Header, src.Header.RawHeaders(), &in)
			}
		})
	}
}

// BenchmarkStickyKey measures key extraction for each source kind.
func BenchmarkStickyKey(b *testing.B) {
	req, _ := parseRequest("GET /p?a=1&uid=q HTTP/1.1\r\nHost: x\r\nx-user-id: u\r\nCookie: a=b; session=s\r\n\r\n")
	peer := netip.MustParseAddr("192.0.2.1")
	for _, spec := range []string{"header:X-User-ID", "cookie:session", "query:uid", "ip"} {
		b.Run(spec, func(b *testing.B) {
			ks := newKeySources(mustSources(b, spec), nil)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var key []byte
				key, _, buf = ks.extract(req, peer, nil, buf)
				if len(key) == 0 {
					b.Fatal("no key")
				}
			}
		})
	}
}
