package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGRPCJudgedByStatus: a call is recorded by its grpc-status, not the
// HTTP 200 around it, with the configured codes counting as failures, and
// counted by status for cellgate_grpc_requests_total.
func TestGRPCJudgedByStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		codes  []int // Options.GRPCErrorCodes
		msg    string
		failed bool
		label  string
	}{
		{name: "ok", msg: "ok", label: "0"},
		{name: "unavailable", msg: "fail:14", failed: true, label: "14"},
		{name: "unknown", msg: "fail:2", failed: true, label: "2"},
		{name: "not-found-is-the-callers", msg: "fail:5", label: "5"},
		{name: "configured-not-found", codes: []int{5}, msg: "fail:5", failed: true, label: "5"},
		{name: "configured-without-unavailable", codes: []int{5}, msg: "fail:14", label: "14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startGRPC(t, newEchoService(), nil)
			rec := &statusRecorder{}
			opts := testOptions()
			opts.H2C = true
			opts.GRPCErrorCodes = tc.codes
			p, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}},
				Hooks{Recorder: func(string) CellRecorder { return rec }}, nil)
			_, _, _, err := unary(testCtx(t), dialGRPC(t, addr, nil), tc.msg)
			if (err == nil) != (tc.msg == "ok") {
				t.Fatalf("call: %v", err)
			}
			testwait.For(t, 10*time.Second, "the call recorded", func() bool { return len(rec.all()) == 1 })
			if got := rec.all()[0]; got != (recorded{200, tc.failed}) {
				t.Errorf("recorded %+v, want {200 %v}", got, tc.failed)
			}
			if got := p.GRPCCounts("g"); got[tc.label] != 1 || len(got) != 1 {
				t.Errorf("gRPC counts %v, want one %s", got, tc.label)
			}
		})
	}
}

// TestGRPCProxyErrors: failures cellgate produces reach a gRPC client as
// grpc-status with X-Cellgate-Error, not as a garbled HTTP answer.
func TestGRPCProxyErrors(t *testing.T) {
	opts := testOptions()
	opts.H2C = true
	opts.EjectAfter, opts.EjectBackoff = 1, time.Minute
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	opts.FailoverPanic = 0 // a down cell's calls stay on it
	rec := &statusRecorder{}
	p, addr := startEdge(t, opts, []CellSpec{
		{Name: "dead", Version: "v1", Endpoints: []string{deadAddr(t)}, Weight: 1, Protocol: ProtoH2C},
		{Name: "h1", Version: "v1", Endpoints: []string{okUpstream(t, nil)}, Weight: 1},
	}, Hooks{Recorder: func(string) CellRecorder { return rec }}, nil)
	cc := dialGRPC(t, addr, nil)
	call := func(cell string) (codes.Code, string) {
		t.Helper()
		ctx := testCtx(t)
		_, hdr, tr, err := unaryKeyed(ctx, cc, keyFor(t, p, cell))
		cause := append(hdr.Get("x-cellgate-error"), tr.Get("x-cellgate-error")...)
		if len(cause) == 0 {
			t.Fatalf("%s: %v without x-cellgate-error (header %v, trailer %v)", cell, err, hdr, tr)
		}
		return status.Code(err), cause[0]
	}
	for _, want := range []struct {
		cell  string
		code  codes.Code
		cause string
	}{
		{"dead", codes.Unavailable, "upstream-refused"},
		{"dead", codes.Unavailable, "no-healthy-endpoint"}, // ejected by the refusal
		{"h1", codes.Unimplemented, "upstream-not-h2"},
	} {
		if code, cause := call(want.cell); code != want.code || cause != want.cause {
			t.Errorf("%s: %v %s, want %v %s", want.cell, code, cause, want.code, want.cause)
		}
	}
	if got := p.GRPCCounts("dead"); got["14"] != 2 {
		t.Errorf("gRPC counts of the dead cell %v, want two 14", got)
	}
	if n := len(rec.all()); n != 3 || slices.ContainsFunc(rec.all(), func(r recorded) bool { return !r.proxyErr }) {
		t.Errorf("recorded %v, want 3 proxy errors", rec.all())
	}
}

// TestGRPCUpstreamReset: an upstream that resets its stream mid-answer
// resets the client's too, and the call counts as failed with no status.
func TestGRPCUpstreamReset(t *testing.T) {
	up := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		_, _ = w.Write([]byte{0, 0, 0, 0, 100, 1, 2}) // a message of 100 bytes, cut after 2
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // RST_STREAM
	})
	rec := &statusRecorder{}
	opts := testOptions()
	opts.H2C = true
	p, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}},
		Hooks{Recorder: func(string) CellRecorder { return rec }}, nil)
	_, _, _, err := unary(testCtx(t), dialGRPC(t, addr, nil), "x")
	if c := status.Code(err); c == codes.OK || c == codes.Unimplemented {
		t.Fatalf("a reset upstream stream: %v", err)
	}
	testwait.For(t, 10*time.Second, "the call recorded", func() bool { return len(rec.all()) == 1 })
	if got := rec.all()[0]; !got.proxyErr {
		t.Errorf("recorded %+v, want a failure", got)
	}
	if got := p.GRPCCounts("g"); got["none"] != 1 {
		t.Errorf("gRPC counts %v, want one none", got)
	}
}

// TestGRPCTimeoutBoundsTheWait: grpc-timeout reaches the upstream
// unchanged, and when it runs out before the upstream answers, cellgate
// ends the call with DEADLINE_EXCEEDED itself. The upstream here ignores
// deadlines and the client sets none of its own (Go's HTTP/2 client, a
// gRPC frame by hand), so only cellgate can end the call.
func TestGRPCTimeoutBoundsTheWait(t *testing.T) {
	var sawTimeout atomic.Value
	released := make(chan struct{})
	up := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		sawTimeout.Store(r.Header.Get("Grpc-Timeout"))
		<-r.Context().Done() // held until cellgate gives up
		close(released)
	})
	rec := &statusRecorder{}
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}},
		Hooks{Recorder: func(string) CellRecorder { return rec }}, nil)
	req, _ := http.NewRequest("POST", "http://"+addr+"/"+echoName+"/Unary", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Grpc-Timeout", "200m")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
	if resp.StatusCode != 200 || st != "4" || resp.Header.Get("X-Cellgate-Error") != "upstream-timeout" {
		t.Fatalf("got %d grpc-status %q %v, want 200 grpc-status 4 upstream-timeout", resp.StatusCode, st, resp.Header)
	}
	if got := sawTimeout.Load(); got != "200m" {
		t.Errorf("upstream saw grpc-timeout %q, want 200m", got)
	}
	select {
	case <-released: // the upstream stream was cancelled too
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream call was never cancelled")
	}
	testwait.For(t, 10*time.Second, "the call recorded", func() bool { return len(rec.all()) == 1 })
	if got := rec.all()[0]; got != (recorded{504, true}) {
		t.Errorf("recorded %+v, want {504 true}", got)
	}
}

// TestGRPCClientCancelNotCounted: a client that cancels its call (RST_STREAM)
// before the upstream answers is not the cell's failure.
func TestGRPCClientCancelNotCounted(t *testing.T) {
	svc := newEchoService()
	up := startGRPC(t, svc, nil)
	rec := &statusRecorder{}
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{up}, Weight: 1, Protocol: ProtoH2C}},
		Hooks{Recorder: func(string) CellRecorder { return rec }}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cc := dialGRPC(t, addr, nil)
	go func() {
		_, _, _, err := unary(ctx, cc, "hold")
		done <- err
	}()
	testwait.For(t, 10*time.Second, "the held call at the upstream", func() bool { return svc.lastMD() != nil })
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
	testwait.For(t, 10*time.Second, "the call recorded", func() bool { return len(rec.all()) == 1 })
	if got := rec.all()[0]; got.proxyErr || got.status >= 500 {
		t.Errorf("a client's cancellation recorded as %+v: counted against the cell", got)
	}
}

// TestH2HeadRefused: requests whose HTTP/1.1 form could be read another
// way are refused before routing.
func TestH2HeadRefused(t *testing.T) {
	for _, r := range []*http.Request{
		{Method: "GET", RequestURI: "/a b", Host: "h"},
		{Method: "GET", RequestURI: "/a\tb", Host: "h"},
		{Method: "G T", RequestURI: "/", Host: "h"},
		{Method: "GET", RequestURI: "/", Host: "h h"},
		{Method: "GET", RequestURI: "/\x7f", Host: "h"},
	} {
		r.Header = http.Header{}
		var h fasthttp.RequestHeader
		if err := readH2Head(&h, r); err == nil {
			t.Errorf("%q %q host %q: accepted as %q", r.Method, r.RequestURI, r.Host, h.Header())
		}
	}
}
