package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testwait"
)

// accessLine is the part of an access log line these tests read.
type accessLine struct {
	Method     string  `json:"method"`
	Host       string  `json:"host"`
	Path       string  `json:"path"`
	Protocol   string  `json:"protocol"`
	Status     int     `json:"status"`
	BytesIn    int64   `json:"bytes_in"`
	BytesOut   int64   `json:"bytes_out"`
	Client     string  `json:"client"`
	Cell       string  `json:"cell"`
	Version    string  `json:"version"`
	Endpoint   string  `json:"endpoint"`
	Error      string  `json:"error"`
	Retried    bool    `json:"retried"`
	KeyHMAC    string  `json:"key_hmac"`
	DurationUS *int64  `json:"duration_us"`
	Time       *string `json:"time"`
}

// startLogged starts an access log writing to a file and a proxy that uses
// it; the proxy is shut down before the log is closed.
func startLogged(t *testing.T, cfg accesslog.Config, buffer int, cells []CellSpec) (*accesslog.Log, string) {
	t.Helper()
	al, err := accesslog.New(cfg, buffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() }) // runs after the proxy's shutdown (LIFO)
	opts := testOptions()
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	// No failover: a dead cell's requests are answered by the proxy itself
	// (an unreachable cell's requests would go to their failover cell).
	opts.FailoverPanic = 0
	_, addr := startProxy(t, opts, cells, Hooks{AccessLog: al})
	return al, addr
}

func readAccess(t *testing.T, path string) map[string]accessLine {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]accessLine{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var l accessLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out[l.Method+" "+l.Path] = l
	}
	return out
}

// TestAccessLogPerRequest sends requests with a client nobody here wrote
// (net/http) and reads one parsed JSON line per request: buffered,
// streamed and failed answers, the query cut, the body sizes, the cell and
// endpoint, the proxy's own error cause, and the sticky key only as a
// keyed hash.
func TestAccessLogPerRequest(t *testing.T) {
	chunk := strings.Repeat("z", 100<<10)
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/stream":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) { w.WriteString(chunk); w.Flush(); w.WriteString(chunk) })
		case "/broken":
			ctx.SetStatusCode(503)
			ctx.SetBodyString("down")
		default:
			ctx.SetBodyString("hello")
		}
	})
	path := filepath.Join(t.TempDir(), "access.log")
	al, addr := startLogged(t, accesslog.Config{Path: path, Sample: 1, Secret: []byte("s")}, 64, []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
	})
	send := func(method, target, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+target, strings.NewReader(body))
		req.Header.Set("X-User-ID", "alice@example.com")
		resp, err := httpClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, target, resp.StatusCode, want)
		}
	}
	send("GET", "/ok?email=alice@example.com", "", 200)
	send("POST", "/ok", "abc", 200)
	send("GET", "/stream", "", 200)
	send("GET", "/broken", "", 503)
	testwait.For(t, 10*time.Second, "4 lines", func() bool { return al.Written() == 4 })

	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("alice")) {
		t.Fatalf("the sticky key or the query is in the log:\n%s", raw)
	}
	lines := readAccess(t, path)
	ok := lines["GET /ok"]
	if ok.Status != 200 || ok.BytesOut != 5 || ok.Cell != "a" || ok.Version != "v1" || ok.Endpoint != up ||
		ok.Protocol != "h1" || ok.Client != "127.0.0.1" || len(ok.KeyHMAC) != 32 || ok.DurationUS == nil || ok.Time == nil {
		t.Errorf("GET /ok logged as %+v", ok)
	}
	if p := lines["POST /ok"]; p.BytesIn != 3 || p.KeyHMAC != ok.KeyHMAC {
		t.Errorf("POST /ok logged as %+v (want bytes_in 3 and the same key hash as GET /ok)", p)
	}
	if s := lines["GET /stream"]; s.Status != 200 || s.BytesOut != int64(2*len(chunk)) {
		t.Errorf("GET /stream logged as %+v, want bytes_out %d", s, 2*len(chunk))
	}
	if b := lines["GET /broken"]; b.Status != 503 || b.Error != "" {
		t.Errorf("GET /broken logged as %+v (an upstream's 503 has no cause of the proxy's)", b)
	}
}

// TestAccessLogErrorsAlwaysLogged: with sample = 0 successes are not
// logged but every answer the proxy made itself is, with its cause and the
// endpoint it tried.
func TestAccessLogErrorsAlwaysLogged(t *testing.T) {
	up := okUpstream(t, nil)
	dead := deadAddr(t)
	path := filepath.Join(t.TempDir(), "access.log")
	al, addr := startLogged(t, accesslog.Config{Path: path, Sample: 0}, 64, []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
		{Name: "b", Version: "v1", Weight: 1, Endpoints: []string{dead}},
	})
	c := newClient(t, addr)
	var failed int
	for i := range 40 {
		if get(t, c, "/x", "X-User-ID", "u"+string(rune('a'+i%26))+string(rune('a'+i/26))).StatusCode() != 200 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no request reached the dead cell")
	}
	testwait.For(t, 10*time.Second, "the failures logged", func() bool { return al.Written() == uint64(failed) })
	raw, _ := os.ReadFile(path)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var l accessLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Status != 502 || l.Error != "upstream-refused" || l.Cell != "b" || l.Endpoint != dead {
			t.Errorf("logged %+v, want 502 upstream-refused from cell b at %s", l, dead)
		}
	}
}

// TestAccessLogStuckDestination: the log's file is a pipe nobody reads, so
// once the pipe is full the writer's write never returns. Requests go on
// being served, and the lines that found no free entry are counted as
// dropped.
func TestAccessLogStuckDestination(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no fifo:", err)
	}
	// A reader end that is opened (so the log can open the pipe) and never
	// read; closing it at the end frees the writer with EPIPE.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	up := okUpstream(t, nil)
	al, addr := startLogged(t, accesslog.Config{Path: fifo, Sample: 1}, 16, []CellSpec{
		{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}},
	})
	t.Cleanup(func() { rd.Close() }) // before the log's Close (LIFO)
	const requests = 2000            // ~300 B a line: well past a 64 KiB pipe
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, addr)
			for i := range requests / 4 {
				if get(t, c, "/p", "X-User-ID", string(rune('a'+w))+string(rune('a'+i%26))).StatusCode() == 200 {
					mu.Lock()
					served++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if served != requests {
		t.Errorf("%d of %d requests served", served, requests)
	}
	if al.Dropped() == 0 {
		t.Errorf("no line dropped with a destination stuck after %d written lines", al.Written())
	}
	t.Logf("written %d, dropped %d of %d", al.Written(), al.Dropped(), requests)
}

// TestAccessLogGRPCAndH2 calls through the HTTP/2 front with grpc-go and
// with net/http's HTTP/2 client: gRPC lines say protocol grpc with the
// call's grpc_status, plain HTTP/2 lines say h2.
func TestAccessLogGRPCAndH2(t *testing.T) {
	svc := newEchoService()
	gup := startGRPC(t, svc, nil)
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.New(accesslog.Config{Path: path, Sample: 1}, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	opts := testOptions()
	opts.H2C = true
	_, addr := startEdge(t, opts, []CellSpec{{Name: "g", Version: "v1", Endpoints: []string{gup}, Weight: 1, Protocol: ProtoH2C}}, Hooks{AccessLog: al}, nil)
	cc := dialGRPC(t, addr, nil)
	if _, _, _, err := unary(testCtx(t), cc, "fail:5"); err == nil {
		t.Fatal("fail:5 answered without an error")
	}
	resp, err := h2cClient().Get("http://" + addr + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	testwait.For(t, 10*time.Second, "2 lines", func() bool { return al.Written() == 2 })
	raw, _ := os.ReadFile(path)
	var grpcLine, h2Line map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		if m["path"] == "/plain" {
			h2Line = m
		} else {
			grpcLine = m
		}
	}
	if grpcLine["protocol"] != "grpc" || grpcLine["grpc_status"] != 5.0 || grpcLine["method"] != "POST" {
		t.Errorf("gRPC call logged as %v, want protocol grpc, grpc_status 5 (NOT_FOUND)", grpcLine)
	}
	if h2Line["protocol"] != "h2" {
		t.Errorf("HTTP/2 GET logged as %v, want protocol h2", h2Line)
	}
}
