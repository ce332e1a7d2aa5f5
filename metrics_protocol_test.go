package cellgate_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/cellgate/cellgate/internal/grpcecho"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/slo"
)

// The SLO engine's cell recorder takes the protocol label.
var _ proxy.ProtocolRecorder = (*slo.Cell)(nil)

// protocolSeries matches a requests_total sample or a duration histogram's
// count, capturing the name, the protocol label and the value.
var protocolSeries = regexp.MustCompile(`^(cellgate_requests_total|cellgate_request_duration_seconds_count)\{[^}]*protocol="([^"]*)"[^}]*\} (\S+)$`)

// scrapeByProtocol sums requests_total and the duration histogram's count
// over cells and codes by protocol, from the admin /metrics.
func scrapeByProtocol(t *testing.T, admin string) (requests, durations map[string]int) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	requests, durations = map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := protocolSeries.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if m[1] == "cellgate_requests_total" {
			requests[m[2]] += int(v)
		} else {
			durations[m[2]] += int(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return requests, durations
}

// TestMetricsProtocolLabel: requests over HTTP/1.1 (net/http), HTTP/2 with
// prior knowledge (x/net/http2) and gRPC calls (grpc-go) are counted in
// cellgate_requests_total and cellgate_request_duration_seconds under
// protocol "h1", "h2" and "grpc" — each exactly once, under its own label.
func TestMetricsProtocolLabel(t *testing.T) {
	r := startGRPCRig(t, "[routing]\nsticky_key = [\"header:X-User-ID\"]")
	const nH1, nH2, nGRPC = 5, 7, 3
	h1 := &http.Client{Timeout: 20 * time.Second}
	h2 := &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	get := func(c *http.Client, i int, wantProto int) {
		req, _ := http.NewRequest("GET", r.c.url(), nil)
		req.Header.Set("X-User-ID", fmt.Sprintf("u%d", i))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained to finish the request
		resp.Body.Close()
		if resp.ProtoMajor != wantProto {
			t.Fatalf("answered over %s, want HTTP/%d", resp.Proto, wantProto)
		}
	}
	for i := range nH1 {
		get(h1, i, 1)
	}
	for i := range nH2 {
		get(h2, i, 2)
	}
	cl, err := grpcecho.Dial(r.c.node.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range nGRPC {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, _, err := cl.Call(ctx, fmt.Sprintf("u%d", i), "hi")
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	want := map[string]int{"h1": nH1, "h2": nH2, "grpc": nGRPC}
	var reqs, durs map[string]int
	// A request is recorded as it finishes, which may be just after the
	// client has its answer: wait until every one is in, or a hang guard
	// passes (the assertions below then say what was missing).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		reqs, durs = scrapeByProtocol(t, r.c.node.AdminAddr())
		all := true
		for p, n := range want {
			all = all && reqs[p] >= n && durs[p] >= n
		}
		if all || time.Now().After(deadline) {
			break
		}
	}
	for p, n := range want {
		if reqs[p] != n || durs[p] != n {
			t.Errorf("protocol %q: requests_total %d, duration count %d, want %d", p, reqs[p], durs[p], n)
		}
	}
	if len(reqs) != len(want) || len(durs) != len(want) {
		t.Errorf("protocols in /metrics: requests_total %v, durations %v; want exactly %v", reqs, durs, want)
	}
	t.Logf("requests_total by protocol %v, duration counts %v", reqs, durs)
}
