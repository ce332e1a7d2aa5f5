package cellgate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/admin"
	"github.com/cellgate/cellgate/bench"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
)

// cluster is one node under test with its in-process cells.
type cluster struct {
	t     *testing.T
	opts  cellgate.Options // Logger is filled in by start
	node  *cellgate.Node
	cells map[string]*democell.Server
	path  string          // journal path
	cfg   *configs.Config // the config the node was started with
}

// cellDef is one cell of a test config.
type cellDef struct {
	name, version string
	weight        float64
	endpoints     int // demo servers to start (default 1)
}

// startCluster starts demo cells and a node whose config is head (SLO,
// rollout tables and so on) plus the cells.
func startCluster(t *testing.T, head string, defs ...cellDef) *cluster {
	t.Helper()
	c := &cluster{t: t, cells: map[string]*democell.Server{}, path: filepath.Join(t.TempDir(), "journal.db")}
	var b strings.Builder
	b.WriteString(testtoml.Head("test-1", c.path, `drain_timeout = "5s"`) + head + "\n")
	for _, d := range defs {
		n := max(d.endpoints, 1)
		var eps []string
		for i := range n {
			s, err := democell.Start(d.name, d.version)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if i == 0 {
				c.cells[d.name] = s
			}
			eps = append(eps, s.Addr())
		}
		b.WriteString(testtoml.Cell(d.name, d.version, d.weight, eps...))
	}
	c.startText(b.String(), "test.toml")
	return c
}

// startFromText starts a node from a whole config text (no demo cells).
func startFromText(t *testing.T, text string) *cluster {
	t.Helper()
	c := &cluster{t: t, cells: map[string]*democell.Server{}}
	c.startText(text, "test.toml")
	return c
}

// startText starts the node from a whole config text, named file in
// errors.
func (c *cluster) startText(text, file string) {
	c.t.Helper()
	cfg, err := configs.Parse([]byte(text), file)
	if err != nil {
		c.t.Fatalf("config: %v\n%s", err, text)
	}
	c.start(cfg)
}

func (c *cluster) start(cfg *configs.Config) {
	c.t.Helper()
	opts := c.opts
	opts.Logger = testLogger(c.t)
	node, err := cellgate.New(cfg, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.node, c.cfg = node, cfg
	c.t.Cleanup(func() { c.stop() })
}

func (c *cluster) stop() {
	if c.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.node.Shutdown(ctx); err != nil {
		c.t.Errorf("shutdown: %v", err)
	}
	c.node = nil
}

func (c *cluster) url() string { return "http://" + c.node.Addr() + "/" }

// waitBound marks a test that mostly waits — a rollout on a seconds-scale
// schedule under light load, a tenth to a third of a core under the race
// detector — as one that may run beside the others so marked (t.Parallel;
// go test runs -parallel of them at once, GOMAXPROCS by default, after
// every test that is not). Only a test whose every part is its own may be
// marked: in-process nodes on port 0, its own upstreams and files, no
// process-wide state (environment, descriptor limits, goroutine counts),
// no gossip (its probe timeouts are tight), no Chromium (its CPU).
func waitBound(t *testing.T) { t.Parallel() }

// testLogger logs to the test's output only when -v is given, and only
// until the test's cleanups have run: memberlist's Shutdown does not wait
// for a probe already under way, whose log line would otherwise reach t.Log
// after the test completed, which panics and ends the whole test binary.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		w := &tWriter{t: t}
		t.Cleanup(w.close) // registered before the node's stop, so it runs after it
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct {
	t      *testing.T
	mu     sync.Mutex // guards closed; held across t.Log so none follows close
	closed bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *tWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// load is background open-loop keyed traffic with per-response accounting.
type load struct {
	cancel context.CancelFunc
	done   chan struct{}
	res    *bench.Result
	err    error

	requests, failed atomic.Int64
	mu               sync.Mutex // guards byCell and onResponse
	byCell           map[string]int64
	onResponse       func(bench.Observation)
}

// startLoad sends rate req/s with keys until stop.
func startLoad(t *testing.T, url string, rate float64, keys int) *load {
	t.Helper()
	return startLoadConns(t, url, rate, keys, 64)
}

// startLoadConns is startLoad over conns connections: an open-loop
// generator behind its schedule sends back to back on every connection, so
// conns bounds what it can pile on a loaded machine.
func startLoadConns(t *testing.T, url string, rate float64, keys, conns int) *load {
	t.Helper()
	cfg := bench.DefaultConfig()
	cfg.URL, cfg.Rate, cfg.Keys = url, rate, keys
	cfg.Connections = conns
	cfg.Warmup, cfg.Duration = 0, 0
	cfg.Timeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, done: make(chan struct{}), byCell: map[string]int64{}}
	go func() {
		defer close(l.done)
		l.res, l.err = bench.Run(ctx, cfg, bench.Hooks{OnResponse: l.observe})
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *load) observe(ob bench.Observation) {
	l.requests.Add(1)
	if ob.Failed {
		l.failed.Add(1)
	}
	l.mu.Lock()
	l.byCell[string(ob.Cell)]++
	f := l.onResponse
	l.mu.Unlock()
	if f != nil {
		f(ob)
	}
}

// stop ends the load and waits for in-flight requests.
func (l *load) stop() {
	l.cancel()
	<-l.done
}

// resent stops the load and returns how many idempotent requests the
// generator resent because the proxy had closed the idle keep-alive
// connection it picked (bench.Result.StaleRetries). A browser resends those
// too, so they are not failures, but a client that does not (or a POST)
// would have failed: zero-downtime checks report and bound them.
func (l *load) resent(t *testing.T) int64 {
	t.Helper()
	l.stop()
	if l.res == nil {
		t.Fatalf("the load generator returned no result: %v", l.err)
	}
	return l.res.StaleRetries
}

// statusNode is the node part of /v1/status on the admin address addr.
func statusNode(t *testing.T, addr string) admin.NodeStatus {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc admin.StatusDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("/v1/status: %v", err)
	}
	return doc.Node
}
