package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The attack tests mount each attack on a raw HTTP/2 connection (frames
// written by hand with x/net's Framer) against the in-process proxy and
// check that it stays bounded and that another client is served meanwhile.
// The figures are logged (go test -v -run Attack ./proxy/).

// h2cConn opens a raw h2c connection to addr, closed when the test ends,
// and writes the client preface and an empty SETTINGS frame; the test
// speaks HTTP/2 frame by frame on the returned framer.
func h2cConn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(h2Preface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// attackConn is h2cConn with the server's frames read and dropped in the
// background.
func attackConn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, fr := h2cConn(t, addr)
	go drainFrames(http2.NewFramer(io.Discard, c)) // read what the server sends so it never blocks on us
	return c, fr
}

// drainFrames reads and drops frames until the connection ends. It never
// writes (the test's goroutine owns the writing framer).
func drainFrames(fr *http2.Framer) {
	for {
		if _, err := fr.ReadFrame(); err != nil {
			return
		}
	}
}

// headerBlock is an HPACK block for GET path on authority.
func headerBlock(path string, extra ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return buf.Bytes()
}

// servedMeanwhile checks that a fresh client is served while the attack runs.
func servedMeanwhile(t *testing.T, addr string) {
	t.Helper()
	resp, err := h2cClient().Get("http://" + addr + "/other")
	if err != nil {
		t.Fatalf("another client during the attack: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("another client during the attack: %d", resp.StatusCode)
	}
}

// TestAttackRapidReset mounts CVE-2023-44487: stream after stream opened
// and reset at once. x/net runs at most MaxConcurrentStreams handlers per
// connection, so goroutines stay bounded however fast streams come, and
// the connection is closed once the client keeps more handlers queued
// than that allows.
func TestAttackRapidReset(t *testing.T) {
	var upstream atomic.Int64
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{okUpstream(t, &upstream)}, Weight: 1}}, Hooks{}, nil)
	before := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	_, fr := attackConn(t, addr)
	const streams = 20000
	block := headerBlock("/attack")
	maxG, sent := 0, 0
	start := time.Now()
	for id := uint32(1); sent < streams; id += 2 {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil {
			break // the server closed the connection: the mitigation
		}
		if fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
		if sent%1000 == 0 {
			maxG = max(maxG, runtime.NumGoroutine())
			if sent == 5000 {
				servedMeanwhile(t, addr)
			}
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms)
	t.Logf("rapid reset: %d streams opened and reset in %v; upstream got %d requests; goroutines %d before, at most %d during; heap in use %d KiB before, %d KiB after",
		sent, elapsed.Round(time.Millisecond), upstream.Load(), before, maxG, heapBefore>>10, ms.HeapInuse>>10)
	if maxG > before+4*250+200 { // 250: h2MaxStreams
		t.Errorf("goroutines grew to %d (from %d): handlers are not bounded per connection", maxG, before)
	}
	servedMeanwhile(t, addr)
}

// TestAttackContinuationFlood mounts CVE-2023-45288: a HEADERS frame
// without END_HEADERS followed by CONTINUATION frames that never end. x/net
// counts the block against the header list limit and closes the connection
// once it is passed, without buffering the flood.
func TestAttackContinuationFlood(t *testing.T) {
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{okUpstream(t, nil)}, Weight: 1}}, Hooks{}, nil)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	c, fr := attackConn(t, addr)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/flood"), EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	// Each fragment is one literal field of 8 KiB, so the decoded list
	// grows with every frame.
	frag := headerBlock("/", "x-flood", string(bytes.Repeat([]byte("a"), 8<<10)))[len(headerBlock("/")):]
	var sent int
	deadline := time.Now().Add(30 * time.Second)
	var werr error
	for time.Now().Before(deadline) && sent < 1<<30 {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if werr = fr.WriteContinuation(1, false, frag); werr != nil {
			break
		}
		sent += len(frag)
		if sent == 64*len(frag) {
			servedMeanwhile(t, addr)
		}
	}
	runtime.ReadMemStats(&ms)
	t.Logf("continuation flood: connection closed after %d KiB of CONTINUATION (%v); heap in use %d KiB before, %d KiB after",
		sent>>10, werr, heapBefore>>10, ms.HeapInuse>>10)
	if werr == nil {
		t.Fatalf("the server took %d KiB of one header block without closing the connection", sent>>10)
	}
	var ne net.Error
	if errors.As(werr, &ne) && ne.Timeout() {
		t.Fatalf("the server stopped reading instead of closing: %v", werr)
	}
	if sent > 64<<20 {
		t.Errorf("the server read %d MiB of one header block before closing", sent>>20)
	}
	servedMeanwhile(t, addr)
}
