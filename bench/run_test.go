package bench

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOpenLoopChargesStall stalls the upstream once for 300 ms during an
// open-loop run at 1000 req/s. About 300 requests were due during the stall;
// measured from their intended send time they make the stall visible in the
// p99, while measured from their actual send time (as a closed-loop tool
// would) only the few requests in flight see it and the p99 hides it.
func TestOpenLoopChargesStall(t *testing.T) {
	const stall = 300 * time.Millisecond
	var (
		gate sync.Mutex // held by the stalling request; everyone passes it
		n    atomic.Int64
	)
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 300 {
			gate.Lock()
			time.Sleep(stall) // the fake upstream's stall, not a test wait
			gate.Unlock()
		} else {
			gate.Lock()
			gate.Unlock() //nolint:staticcheck // passing the gate is the point
		}
		ctx.SetBodyString("ok\n")
	})
	cfg := testConfig(url)
	cfg.Rate = 1000
	cfg.Duration = 1200 * time.Millisecond
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeOpen || res.Uncorrected == nil {
		t.Fatalf("mode %q, uncorrected %v: want open loop with uncorrected summary", res.Mode, res.Uncorrected)
	}
	if res.Errors != 0 {
		t.Fatalf("errors %d: %v", res.Errors, res.ErrorsBy)
	}
	t.Logf("corrected p50 %v p99 %v max %v; uncorrected p99 %v max %v; requests %d",
		res.Latency.P50, res.Latency.P99, res.Latency.Max, res.Uncorrected.P99, res.Uncorrected.Max, res.Requests)
	if res.Latency.P99 < 200*time.Millisecond {
		t.Errorf("corrected p99 = %v, want ≥ 200ms: the stall is hidden", res.Latency.P99)
	}
	if res.Latency.Max < stall-20*time.Millisecond {
		t.Errorf("corrected max = %v, want ≈ %v", res.Latency.Max, stall)
	}
	if res.Uncorrected.P99 >= res.Latency.P99/2 {
		t.Errorf("uncorrected p99 = %v, want well below corrected %v (only in-flight requests saw the stall)",
			res.Uncorrected.P99, res.Latency.P99)
	}
	if want := int64(1200); res.Requests < want*9/10 || res.Requests > want*11/10 {
		t.Errorf("requests = %d, want ≈ %d (the schedule must not wait for the target)", res.Requests, want)
	}
}

// TestClosedLoopWarmupExcluded checks that warm-up requests are observed but
// not recorded, and that the counts of the hook and the result agree.
func TestClosedLoopWarmupExcluded(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(url)
	cfg.Warmup = 200 * time.Millisecond
	cfg.Duration = 600 * time.Millisecond // long enough to outlast a stall of this shared machine
	var warm, measured atomic.Int64
	res, err := Run(context.Background(), cfg, Hooks{OnResponse: func(o Observation) {
		if o.Warmup {
			warm.Add(1)
		} else {
			measured.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeClosed || res.Uncorrected != nil {
		t.Errorf("mode %q uncorrected %v: want closed loop without an uncorrected summary", res.Mode, res.Uncorrected)
	}
	if warm.Load() == 0 || measured.Load() == 0 {
		t.Fatalf("warm %d measured %d: want both; result %+v", warm.Load(), measured.Load(), res)
	}
	if res.Requests != measured.Load() || res.Latency.Count != res.Requests {
		t.Errorf("result requests %d, histogram %d, hook saw %d measured", res.Requests, res.Latency.Count, measured.Load())
	}
	if res.Elapsed != cfg.Duration {
		t.Errorf("elapsed %v, want the schedule's %v", res.Elapsed, cfg.Duration)
	}
}

// TestRunInterrupted cancels the context from the first interval: the run
// stops early and reports what it measured.
func TestRunInterrupted(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(url)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var intervals atomic.Int64
	res, err := Run(ctx, cfg, Hooks{OnInterval: func(iv Interval) {
		if intervals.Add(1) == 1 {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted {
		t.Error("Interrupted = false, want true")
	}
	if res.Requests == 0 || res.Elapsed <= 0 || res.Elapsed > 10*time.Second {
		t.Errorf("requests %d elapsed %v: want a partial measurement", res.Requests, res.Elapsed)
	}
}

// TestRunUntilCancelled runs without a duration, as a scenario does.
func TestRunUntilCancelled(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(url)
	cfg.Duration = 0
	cfg.Rate = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen atomic.Int64
	res, err := Run(ctx, cfg, Hooks{OnResponse: func(Observation) {
		if seen.Add(1) == 50 {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 50 || !res.Interrupted {
		t.Errorf("requests %d interrupted %v: want ≥ 50 and true", res.Requests, res.Interrupted)
	}
}

func TestConnectRefusedIsCounted(t *testing.T) {
	cfg := testConfig(refusedURL)
	cfg.Duration = 200 * time.Millisecond
	cfg.Rate = 100
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorsBy[CauseRefused] == 0 || res.Errors != res.Requests {
		t.Errorf("errors %d of %d by cause %v: want all %q", res.Errors, res.Requests, res.ErrorsBy, CauseRefused)
	}
}

func TestErrorStatusAndCellgateError(t *testing.T) {
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Request.Header.Peek("X-User-ID")) {
		case "user-0":
			ctx.Response.Header.Set(HeaderError, "upstream_timeout")
			ctx.SetStatusCode(504)
		case "user-1":
			ctx.SetStatusCode(503)
		default:
			ctx.SetStatusCode(404) // not an error: the proxy answered
		}
	})
	cfg := testConfig(url)
	cfg.Duration = 300 * time.Millisecond
	cfg.Keys = 3
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	got504, got503 := res.ErrorsBy[causeCellgatePrefix+"upstream_timeout"], res.ErrorsBy[statusCause(503)]
	if got504 == 0 || got503 == 0 {
		t.Fatalf("errors by cause %v: want cellgate and status causes", res.ErrorsBy)
	}
	if res.ErrorsBy[statusCause(504)] != 0 {
		t.Errorf("a response with %s was also counted by its status: %v", HeaderError, res.ErrorsBy)
	}
	if res.Errors != got504+got503 || res.Status[404] == 0 || res.Status[404]+res.Errors != res.Requests {
		t.Errorf("errors %d, status %v, requests %d: inconsistent", res.Errors, res.Status, res.Requests)
	}
}

// TestTimeoutWatchdog: one request stalls past the timeout; the watchdog
// fails it as a timeout, and its connection is replaced so later requests
// succeed. The fake upstream holds that response until the run is over (or
// a 60 s hang guard), so a failure seen while it is still held can only be
// the watchdog's doing, whatever the machine's speed; the latency is at
// least the timeout (the watchdog never fires early) and is logged as the
// figure rather than compared with a wall-clock bound.
func TestTimeoutWatchdog(t *testing.T) {
	const timeout = 250 * time.Millisecond
	var n atomic.Int64
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 5 {
			<-release // the fake upstream's stall: answers only once released
		}
		ctx.SetBodyString("ok\n")
	})
	t.Cleanup(free) // runs before the server's Shutdown, which waits for handlers
	guard := time.AfterFunc(60*time.Second, free)
	defer guard.Stop()
	cfg := testConfig(url)
	cfg.Connections = 2
	cfg.Timeout = timeout
	cfg.Duration = 600 * time.Millisecond
	var mu sync.Mutex
	var failed []time.Duration // failures seen while the upstream still held the response
	var late int               // failures seen after it was released
	res, err := Run(context.Background(), cfg, Hooks{OnResponse: func(o Observation) {
		if o.Err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-release:
			late++
		default:
			failed = append(failed, o.Latency)
		}
	}})
	free()
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorsBy[CauseTimeout] == 0 || res.Errors != res.ErrorsBy[CauseTimeout] {
		t.Errorf("errors %d by cause %v: want timeouts only", res.Errors, res.ErrorsBy)
	}
	if len(failed) == 0 {
		t.Fatalf("no request failed while the upstream stalled (%d failed after it was released): the watchdog did not fire", late)
	}
	for _, lat := range failed {
		if lat < timeout {
			t.Errorf("a request failed after %v, before the %v timeout", lat, timeout)
		}
	}
	t.Logf("stalled request failed by the watchdog after %v (timeout %v, checks every %v)", failed, timeout, timeout/watchdogChecks)
	if res.Status[200] < 10 {
		t.Errorf("only %d responses after the timeout", res.Status[200])
	}
}

// TestHTTPSInsecure runs against a net/http TLS server with a self-signed
// certificate: verified it fails, with Insecure it answers.
func TestHTTPSInsecure(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderCell, "tls-cell")
		_, _ = w.Write([]byte("ok\n"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL + "/")
	cfg.Duration = 150 * time.Millisecond
	cfg.Rate = 100
	res, err := Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || len(res.Status) != 0 {
		t.Errorf("verified run against a self-signed server: errors %d status %v", res.Errors, res.Status)
	}
	cfg.Insecure = true
	res, err = Run(context.Background(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Status[200] == 0 || len(res.Cells) != 1 || res.Cells[0].Cell != "tls-cell" {
		t.Errorf("insecure run: errors %v status %v cells %+v", res.ErrorsBy, res.Status, res.Cells)
	}
}
