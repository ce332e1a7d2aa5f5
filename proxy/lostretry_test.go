package proxy

import (
	"bufio"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testh1"
)

// dropper is a loopback upstream that reads each request's head and then
// drops the connection without answering: a reset (SO_LINGER 0) when
// prefix is empty — as a killed process's pooled connections are — else
// prefix (part of a response head) and a close.
type dropper struct {
	addr string
	hits atomic.Int64
}

func newDropper(t *testing.T, prefix string) *dropper {
	t.Helper()
	d := &dropper{}
	d.addr = serveRaw(t, func(c net.Conn) {
		defer c.Close()
		if _, err := testh1.ReadHead(bufio.NewReader(c)); err != nil {
			return
		}
		d.hits.Add(1)
		if prefix != "" {
			_, _ = c.Write([]byte(prefix))
			return // a close (FIN): the prefix arrives whole
		}
		_ = c.(*net.TCPConn).SetLinger(0) // close sends RST
	})
	return d
}

// TestLostRequestRetriedWithoutEvidence: with passive ejection off, an
// upstream that reads a request and resets the connection before any
// response byte leaves no evidence that its cell is dying. An idempotent
// request is retried once — on another endpoint of its cell in rotation,
// else on its failover cell — and the cell stays up; a POST with a body
// (or a PUT, whose streamed body cannot be replayed) fails 502 and is
// counted in flight; a request of which part of the response head arrived
// is never repeated.
func TestLostRequestRetriedWithoutEvidence(t *testing.T) {
	for _, tc := range []struct {
		name, method, prefix string
		bGood                bool // b has a healthy endpoint besides the dropper
		noBody               bool
		status               int
		cell, body           string
		inflight             uint64
	}{
		{name: "GET, rest of cell", method: "GET", bGood: true, status: 200, cell: "b", body: "b"},
		{name: "GET, failover cell", method: "GET", status: 200, cell: "a", body: "a"},
		{name: "DELETE, failover cell", method: "DELETE", status: 200, cell: "a", body: "a"},
		{name: "POST with body", method: "POST", status: 502, cell: "b", inflight: 1},
		{name: "POST without body", method: "POST", noBody: true, status: 502, cell: "b", inflight: 1},
		// Idempotent, but its body streamed (bodies are not buffered): it
		// cannot be sent again.
		{name: "PUT with body", method: "PUT", status: 502, cell: "b", inflight: 1},
		{name: "GET after a response byte", method: "GET", prefix: "HTTP/1.1 200 OK\r\n", status: 502, cell: "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDropper(t, tc.prefix)
			bEps := []string{d.addr}
			if tc.bGood {
				bEps = append(bEps, newKillable(t, cellNamed("b")).addr)
			}
			opts := testOptions() // EjectAfter 0: no passive ejection
			opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
			p, addr := startProxy(t, opts, []CellSpec{
				{Name: "a", Weight: 1, Endpoints: []string{newKillable(t, cellNamed("a")).addr}},
				{Name: "b", Weight: 1, Endpoints: bEps},
			}, Hooks{})
			tab := p.snap.Load().table
			c := newClient(t, addr)
			var body []byte
			if (tc.method == "POST" || tc.method == "PUT") && !tc.noBody {
				body = []byte("payload")
			}
			// Until the dropper has lost three requests (bounded: with two
			// endpoints in b, p2c picks the dropper about half the time).
			sent := 0
			for u := 0; d.hits.Load() < 3 && u < 400; u++ {
				k := fmt.Sprint("user-", u)
				if tab.PickKey([]byte(k)) != 1 {
					continue
				}
				before := d.hits.Load()
				r := do(t, c, tc.method, "/", body, "X-User-ID", k)
				if tc.bGood && d.hits.Load() == before {
					continue // never reached the dropper
				}
				sent++
				got := string(r.Header.Peek("X-Cellgate-Cell"))
				if r.StatusCode() != tc.status || got != tc.cell || (tc.body != "" && string(r.Body()) != tc.body) {
					t.Fatalf("%s for b's user %s, dropped by b: %d %q from %q, want %d %q from %q",
						tc.method, k, r.StatusCode(), r.Body(), got, tc.status, tc.body, tc.cell)
				}
				if !p.CellUp("b") {
					t.Fatalf("b marked down after %s for %s was dropped: health is the checks' to decide", tc.method, k)
				}
			}
			if d.hits.Load() < 3 {
				t.Fatalf("the dropper saw %d requests, want 3", d.hits.Load())
			}
			st := p.Status()[1]
			t.Logf("%s: %d requests dropped by b answered %d from %s; b up=%v failovers=%d inflight_failed=%d",
				tc.name, sent, tc.status, tc.cell, st.Up, st.Failovers, st.InflightFailed)
			if !st.Up {
				t.Fatal("b marked down by a lost request: health is the checks' to decide")
			}
			if st.InflightFailed != tc.inflight*uint64(sent) {
				t.Fatalf("inflight_failed = %d, want %d", st.InflightFailed, tc.inflight*uint64(sent))
			}
			if want := uint64(0); tc.cell == "a" {
				if st.Failovers != uint64(sent) {
					t.Fatalf("failovers = %d, want %d", st.Failovers, sent)
				}
			} else if st.Failovers != want {
				t.Fatalf("failovers = %d, want 0", st.Failovers)
			}
		})
	}
}
