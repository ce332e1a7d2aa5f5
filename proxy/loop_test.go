//go:build linux

package proxy

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// loopOptions are testOptions on the loop core, whatever -proxy.core says.
func loopOptions() Options {
	o := testOptions()
	o.Core = CoreLoop
	return o
}

// TestLoopServesFastPath: a net/http client's GETs through the loop core
// are answered by the loop itself (not handed over), on one keep-alive
// connection, with the upstream's body and the cell's labels.
func TestLoopServesFastPath(t *testing.T) {
	var n atomic.Int64
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	p, addr := startProxy(t, loopOptions(), []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, Hooks{})
	c := httpClient(t)
	for i := 0; i < 5; i++ {
		resp, err := c.Get("http://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("X-Cellgate-Cell") != "a" {
			t.Fatalf("response %d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
	if s := p.LoopStats(); s.Served != 5 || s.Handed != 0 {
		t.Fatalf("loop stats %+v, want 5 served and none handed", s)
	}
	if got := n.Load(); got != 5 {
		t.Fatalf("upstream saw %d requests, want 5", got)
	}
}

// netHTTPUpstream serves h with net/http on loopback until the test ends.
func netHTTPUpstream(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
