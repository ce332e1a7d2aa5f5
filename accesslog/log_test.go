package accesslog

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

func newLog(t *testing.T, cfg Config, buffer int) *Log {
	t.Helper()
	l, err := New(cfg, buffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readLines parses every line of a log file as one JSON object.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func fullEntry(e *Entry) {
	e.Start = time.Date(2026, 11, 30, 4, 5, 6, 7000, time.UTC)
	e.Duration, e.TTFB = 1500*time.Microsecond, 900*time.Microsecond
	e.Method = append(e.Method, "POST"...)
	e.Host = append(e.Host, "shop.example"...)
	e.Path = append(e.Path, "/cart/\"x\"?email=a@b.c"...)
	e.Protocol = GRPC
	e.Status, e.GRPCStatus = 200, 14
	e.BytesIn, e.BytesOut = 12, 3456
	e.Client = netip.MustParseAddr("192.0.2.7")
	e.Cell, e.Version, e.Endpoint = "canary-1", "v2", "127.0.0.1:9001"
	e.Flags = append(e.Flags, "ranker=v2, dark=?1"...)
	e.Pinned, e.Overridden, e.Retried = true, true, true
	e.Error = "upstream-reset"
	e.TraceID = [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	e.RequestID = append(e.RequestID, "req-42"...)
	e.StickyKey = append(e.StickyKey, "user-1234"...)
}

// TestLineFields writes one entry with every field set and reads it back
// as JSON: every field under its name, the query cut, the sticky key only
// as its HMAC with the configured secret.
func TestLineFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	secret := []byte("node-secret")
	l := newLog(t, Config{Path: path, Sample: 1, Secret: secret}, 4)
	l.SetRollouts(map[string]Rollout{"canary-1": {ID: "r-7", Step: 2}})
	e := l.Begin(false, 0)
	fullEntry(e)
	l.Publish(e)
	testwait.For(t, 20*time.Second, "one line written", func() bool { return l.Written() == 1 })

	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("user-1234")) {
		t.Fatalf("the sticky key itself is in the log: %s", raw)
	}
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("user-1234"))
	want := map[string]any{
		"time": "2026-11-30T04:05:06.000007Z", "duration_us": 1500.0, "ttfb_us": 900.0,
		"method": "POST", "host": "shop.example", "path": `/cart/"x"`, "protocol": "grpc",
		"status": 200.0, "grpc_status": 14.0, "bytes_in": 12.0, "bytes_out": 3456.0,
		"client": "192.0.2.7", "cell": "canary-1", "version": "v2", "endpoint": "127.0.0.1:9001",
		"rollout": "r-7", "step": 2.0, "flags": "ranker=v2, dark=?1",
		"pinned": true, "overridden": true, "retried": true, "error": "upstream-reset",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "request_id": "req-42",
		"key_hmac": hex.EncodeToString(mac.Sum(nil)[:16]),
	}
	got := lines[0]
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s = %v", k, got[k])
		}
	}
}

// TestQueryKept: with query = true the path keeps its query.
func TestQueryKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l := newLog(t, Config{Path: path, Sample: 1, Query: true}, 4)
	e := l.Begin(false, 0)
	e.Path = append(e.Path, "/s?q=1"...)
	l.Publish(e)
	testwait.For(t, 20*time.Second, "one line written", func() bool { return l.Written() == 1 })
	if p := readLines(t, path)[0]["path"]; p != "/s?q=1" {
		t.Errorf("path %v, want the query kept", p)
	}
}

// TestSampling: errors are always taken, others by the draw; an unsampled
// request is not a drop.
func TestSampling(t *testing.T) {
	l := newLog(t, Config{Path: filepath.Join(t.TempDir(), "a.log"), Sample: 0.25}, 4)
	const quarter = 1 << 62
	cases := []struct {
		name  string
		err   bool
		draw  uint64
		taken bool
	}{
		{"below the threshold", false, quarter - 1<<20, true},
		{"above the threshold", false, quarter + 1<<20, false},
		{"error above the threshold", true, ^uint64(0), true},
	}
	for _, c := range cases {
		e := l.Begin(c.err, c.draw)
		if (e != nil) != c.taken {
			t.Errorf("%s: taken %v, want %v", c.name, e != nil, c.taken)
		}
		if e != nil {
			l.Publish(e)
		}
	}
	if d := l.Dropped(); d != 0 {
		t.Errorf("dropped %d, want 0: not sampling is not dropping", d)
	}
	if err := l.Configure(Config{Sample: 1}); err != nil {
		t.Fatal(err)
	}
	if e := l.Begin(true, 0); e != nil {
		t.Error("a log with no path took an entry")
	}
}

// neverWriter is a destination whose Write never returns, as a file on a
// hung NFS mount or a full pipe nobody reads.
type neverWriter struct{ entered chan struct{} }

func (w neverWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	select {} // never returns
}

// TestFullBufferDrops: with a destination that never returns, the request
// side keeps going — Begin returns at once, nil once every entry is in
// flight — and counts each line it could not take.
func TestFullBufferDrops(t *testing.T) {
	const buffer, requests = 8, 1000
	l, err := New(Config{Path: filepath.Join(t.TempDir(), "a.log"), Sample: 1}, buffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The writer goroutine stays blocked for good; the log is not closed.
	w := neverWriter{entered: make(chan struct{}, 1)}
	l.dest.Store(&dest{path: "never", w: w})
	l.Publish(l.Begin(false, 0))
	<-w.entered // the writer is stuck in its first write
	done := make(chan int)
	go func() {
		taken := 0
		for range requests {
			if e := l.Begin(false, 0); e != nil {
				e.Path = append(e.Path, '/')
				l.Publish(e)
				taken++
			}
		}
		done <- taken
	}()
	var taken int
	select {
	case taken = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Begin/Publish blocked behind a writer that never returns")
	}
	if taken != buffer {
		t.Errorf("took %d entries with a buffer of %d: want every entry of the buffer taken and no more", taken, buffer)
	}
	if d := l.Dropped(); d != uint64(requests-taken) {
		t.Errorf("dropped %d, want %d (requests %d, taken %d)", d, requests-taken, requests, taken)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close waits for a writer that never returns")
	}
}

// TestReopen: after the file is moved away, lines go on to the moved file
// until Reopen, then to a new file at the path.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l := newLog(t, Config{Path: path, Sample: 1}, 4)
	logPath := func(p string) {
		e := l.Begin(false, 0)
		e.Path = append(e.Path, p...)
		l.Publish(e)
	}
	logPath("/one")
	testwait.For(t, 20*time.Second, "first line", func() bool { return l.Written() == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	logPath("/two")
	testwait.For(t, 20*time.Second, "second line", func() bool { return l.Written() == 2 })
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	logPath("/three")
	testwait.For(t, 20*time.Second, "third line", func() bool { return l.Written() == 3 })
	paths := func(p string) string {
		var s []string
		for _, m := range readLines(t, p) {
			s = append(s, m["path"].(string))
		}
		return strings.Join(s, " ")
	}
	if got := paths(path + ".1"); got != "/one /two" {
		t.Errorf("rotated file has %q, want /one /two", got)
	}
	if got := paths(path); got != "/three" {
		t.Errorf("reopened file has %q, want /three", got)
	}
}

// TestConfigureRejects: a bad sample changes nothing.
func TestConfigureRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := newLog(t, Config{Path: path, Sample: 1}, 4)
	if err := l.Configure(Config{Path: path, Sample: 1.5}); err == nil {
		t.Fatal("sample 1.5 accepted")
	}
	if !l.On() {
		t.Error("a refused Configure turned the log off")
	}
}
