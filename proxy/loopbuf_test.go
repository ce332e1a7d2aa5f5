//go:build linux

package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// bufLook is what a loop holds in read buffers: each client connection's
// (capacity, bytes held), and the capacities of its spares.
type bufLook struct {
	conns  [][2]int
	spares []int
}

func lookAtBuffers(t *testing.T, p *Proxy) bufLook {
	t.Helper()
	var b bufLook
	if !p.inspectLoops(func(l *loop) {
		for _, c := range l.cl {
			if c != nil {
				b.conns = append(b.conns, [2]int{cap(c.in), len(c.in)})
			}
		}
		for _, s := range l.spareIn {
			b.spares = append(b.spares, cap(s))
		}
	}, 20*time.Second) {
		t.Fatal("the loop did not run the test's look")
	}
	return b
}

// TestLoopReadBufferGivenBack: a keep-alive connection whose request did
// not fit the read buffer it started with (a 20 KiB header, a 6 KiB body)
// holds its starting buffer again once idle, and the grown one is the
// loop's spare; a request pipelined behind a large one is served from the
// small buffer it was moved to. Every request is the loop's own.
func TestLoopReadBufferGivenBack(t *testing.T) {
	opts := loopOptions()
	opts.loops = 1
	opts.ReadBufferSize = 40 << 10 // as a node sizes it
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveProxy(t, p, nil)
	bigHead := "GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 20<<10) + "\r\n\r\n"
	bigBody := post("/body", strings.Repeat("b", 6<<10), "")
	small := "GET /small HTTP/1.1\r\nHost: x\r\n\r\n"

	const nconns = maxSpareIn + 2
	var conns []net.Conn
	var readers []*bufio.Reader
	for range nconns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		conns, readers = append(conns, c), append(readers, bufio.NewReader(c))
	}
	// exchange writes reqs on connection i in one write and reads as many
	// 200s.
	exchange := func(i int, reqs ...string) {
		t.Helper()
		if _, err := io.WriteString(conns[i], strings.Join(reqs, "")); err != nil {
			t.Fatal(err)
		}
		for range reqs {
			resp, err := http.ReadResponse(readers[i], nil)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("connection %d: %d %q, want the upstream's 200", i, resp.StatusCode, body)
			}
		}
	}
	// idleSmall checks every connection holds a starting buffer, empty.
	idleSmall := func(when string) bufLook {
		t.Helper()
		b := lookAtBuffers(t, p)
		if len(b.conns) != nconns {
			t.Fatalf("%s: the loop holds %d connections, want %d", when, len(b.conns), nconns)
		}
		for i, c := range b.conns {
			if c != [2]int{inStart, 0} {
				t.Errorf("%s: connection %d holds a %d-byte read buffer (%d bytes in it), want an empty %d-byte one", when, i, c[0], c[1], inStart)
			}
		}
		if len(b.spares) > maxSpareIn {
			t.Errorf("%s: the loop keeps %d spare buffers, want at most %d", when, len(b.spares), maxSpareIn)
		}
		return b
	}

	// Each connection carries a large head, then a small request.
	for i := range nconns {
		exchange(i, bigHead)
	}
	b := idleSmall("after a 20 KiB head on each connection")
	if len(b.spares) == 0 || slices.Max(b.spares) < 20<<10 {
		t.Errorf("spare buffers %v after 20 KiB heads, want the grown ones among them", b.spares)
	}
	for i := range nconns {
		exchange(i, small)
	}
	idleSmall("after a small request on each")
	// A body that does not fit the starting buffer, the loop's to serve
	// (loopbody.go), then a large head with a small request pipelined
	// behind it.
	exchange(0, bigBody)
	exchange(1, bigHead, small)
	exchange(2, bigBody, bigHead, small)
	idleSmall("after large requests, some with more behind them")
	// Every connection grown at once, then idle: the loop keeps no more
	// than maxSpareIn of their buffers.
	for i := range nconns {
		if _, err := io.WriteString(conns[i], bigHead[:len(bigHead)-2]); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 20*time.Second, "every connection's large head read but its last line", func() bool {
		for _, c := range lookAtBuffers(t, p).conns {
			if c[1] < len(bigHead)-2 {
				return false
			}
		}
		return true
	})
	for i := range nconns {
		exchange(i, "\r\n")
	}
	idleSmall("after large heads on every connection at once")
	if st, want := p.LoopStats(), uint64(3*nconns+6); st.Handed != 0 || st.Served != want {
		t.Errorf("LoopStats %+v, want the %d requests served by the loop, none handed over", st, want)
	}
}
