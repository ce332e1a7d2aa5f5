//go:build linux

package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/cellgate/cellgate/balancer"
)

// TestLoopIdleAcrossCells: one client whose requests alternate between two
// cells keeps one pooled upstream connection to each, instead of closing
// one after every response and dialling again (idleRoom). Broken: with
// idle connections capped at one per client connection (the rule before),
// every request to the second cell dials. At the connection cap
// (max_conns = 1, this client) the descriptor budget's rule binds again:
// one idle connection per client, so the second cell's is closed after
// each response (broken: an idleRoom that ignores the cap keeps both).
func TestLoopIdleAcrossCells(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxConns int
		wantB    int64 // new connections to b's upstream for 20 requests
	}{
		{"room below the cap", 0, 0},
		{"at the cap", 1, 20},
	} {
		t.Run(tc.name, func(t *testing.T) { loopIdleAcrossCells(t, tc.maxConns, tc.wantB) })
	}
}

func loopIdleAcrossCells(t *testing.T, maxConns int, wantB int64) {
	var dials [2]atomic.Int64
	ups := make([]string, 2)
	for i := range ups {
		ups[i] = countingUpstream(t, &dials[i])
	}
	opts := loopOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}, {Kind: balancer.SourceIP}}
	if maxConns > 0 {
		opts.MaxConns = maxConns
	}
	_, addr := startProxy(t, opts, []CellSpec{
		{Name: "a", Version: "v1", Endpoints: []string{ups[0]}, Weight: 1},
		{Name: "b", Version: "v1", Endpoints: []string{ups[1]}, Weight: 1},
	}, Hooks{})
	c := httpClient(t)
	send := func(key string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("X-User-ID", key)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Cellgate-Cell")
	}
	// A user of each cell.
	keys := map[string]string{}
	for i := 0; len(keys) < 2 && i < 200; i++ {
		k := fmt.Sprintf("user-%d", i)
		if cell := send(k); keys[cell] == "" {
			keys[cell] = k
		}
	}
	if keys["a"] == "" || keys["b"] == "" {
		t.Fatalf("no user found for each cell: %v", keys)
	}
	before := [2]int64{dials[0].Load(), dials[1].Load()}
	for i := 0; i < 20; i++ {
		if got := send(keys["a"]); got != "a" {
			t.Fatalf("user of a went to %q", got)
		}
		if got := send(keys["b"]); got != "b" {
			t.Fatalf("user of b went to %q", got)
		}
	}
	want := [2]int64{0, wantB}
	for i := range dials {
		if n := dials[i].Load() - before[i]; n != want[i] {
			t.Errorf("cell %c: %d new upstream connections for 20 requests on one client connection, want %d", 'a'+i, n, want[i])
		}
	}
}

// countingUpstream is a net/http upstream on loopback answering "ok" that
// counts the connections it accepts in n.
func countingUpstream(t *testing.T, n *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.Add(1)
			}
		},
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
