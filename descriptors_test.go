package cellgate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// fdChildEnv names the config file of the node TestHelperFDNode runs.
const fdChildEnv = "CELLGATE_FD_CHILD_CONFIG"

// TestDescriptorFlood runs a node in a child process under `ulimit -n 256`
// (the test binary re-executed through sh) with the default max_conns of
// 50 000, and floods it with 300 keep-alive clients over real sockets.
// The node must fit max_conns to the limit, so every client over it gets a
// 503 too-many-connections instead of an accept loop dead on EMFILE; every
// held client then gets an upstream request in flight at once (two
// descriptors each); /readyz stays accurate throughout; and after the flood
// leaves, new clients are served.
func TestDescriptorFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const nofile, clients = 256, 300
	var inflight atomic.Int64
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			inflight.Add(1)
			<-release
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	defer closeOnce(release)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "node.toml")
	cfg := testtoml.Head("fd-1", filepath.Join(dir, "journal.db"), `drain_timeout = "2s"`) +
		testtoml.Cell("a", "v1", 1, strings.TrimPrefix(up.URL, "http://"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -n `+strconv.Itoa(nofile)+` && exec "$0" -test.run='^TestHelperFDNode$' -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), fdChildEnv+"="+cfgPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, tail(stderr.String(), 4000))
		}
	}()
	addr, admin, maxConns := readChildAddrs(t, stdout)
	t.Logf("child under ulimit -n %d: max_conns fitted to %d", nofile, maxConns)
	if maxConns <= 0 || 2*maxConns >= nofile {
		t.Fatalf("max_conns %d does not fit %d descriptors at 2 each", maxConns, nofile)
	}

	// The flood: clients connect one after another and stay connected.
	var held []*rawClient
	refused := 0
	for i := range clients {
		c, status, head, err := dialGet(addr, "/")
		switch {
		case err != nil:
			t.Fatalf("client %d: %v (a hang here is a dead accept loop)", i, err)
		case status == 200:
			held = append(held, c)
		case status == 503 && strings.Contains(head, "too-many-connections"):
			refused++
			c.close()
		default:
			t.Fatalf("client %d: status %d\n%s", i, status, head)
		}
	}
	defer func() {
		for _, c := range held {
			c.close()
		}
	}()
	t.Logf("flood of %d: %d served and held, %d refused with 503 too-many-connections", clients, len(held), refused)
	if len(held) != maxConns || refused != clients-maxConns {
		t.Errorf("held %d, refused %d; want %d and %d", len(held), refused, maxConns, clients-maxConns)
	}
	if s := readyz(t, admin); s != 200 {
		t.Errorf("/readyz during the flood: %d, want 200", s)
	}

	// Every held client with a request in flight at once: each holds an
	// upstream connection too.
	var wg sync.WaitGroup
	errs := make(chan error, len(held))
	for _, c := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := c.get("/hold", 30*time.Second)
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	testwait.For(t, 30*time.Second, "every held client's request at the upstream", func() bool { return inflight.Load() == int64(len(held)) })
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)); err == nil {
		t.Logf("child descriptors with %d clients held and their %d upstream requests in flight: %d of %d", len(held), len(held), len(fds), nofile)
	}
	if s := readyz(t, admin); s != 200 {
		t.Errorf("/readyz with %d upstream requests in flight: %d, want 200", len(held), s)
	}
	closeOnce(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("held client with an upstream request in flight: %v", err)
	}

	// The flood leaves; new clients are served.
	for _, c := range held {
		c.close()
	}
	held = nil
	testwait.For(t, 10*time.Second, "a new client served after the flood", func() bool {
		c, status, _, err := dialGet(addr, "/")
		if err == nil {
			c.close()
		}
		return err == nil && status == 200
	})
	if s := readyz(t, admin); s != 200 {
		t.Errorf("/readyz after the flood: %d, want 200", s)
	}
}

// TestHelperFDNode is the child of TestDescriptorFlood: it runs a node from
// the config named by fdChildEnv, prints its addresses and the fitted
// connection cap, and stops when its stdin closes.
func TestHelperFDNode(t *testing.T) {
	path := os.Getenv(fdChildEnv)
	if path == "" {
		t.Skip("helper process")
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := cellgate.New(cfg, cellgate.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("NODE %s %s %d\n", n.Addr(), n.AdminAddr(), n.Proxy().FDBudget().MaxConns)
	io.Copy(io.Discard, os.Stdin) //nolint:errcheck
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// readChildAddrs reads the child's "NODE addr admin max_conns" line.
func readChildAddrs(t *testing.T, r io.Reader) (addr, admin string, maxConns int) {
	t.Helper()
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "NODE ") {
				ch <- line{s: sc.Text()}
				io.Copy(io.Discard, r) //nolint:errcheck
				return
			}
		}
		ch <- line{err: fmt.Errorf("child exited before reporting its addresses: %v", sc.Err())}
	}()
	select {
	case l := <-ch:
		if l.err != nil {
			t.Fatal(l.err)
		}
		if _, err := fmt.Sscanf(l.s, "NODE %s %s %d", &addr, &admin, &maxConns); err != nil {
			t.Fatalf("child line %q: %v", l.s, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not report its addresses in 30s")
	}
	return addr, admin, maxConns
}

// rawClient is one keep-alive client connection.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

// dialGet connects and makes one GET.
func dialGet(addr, path string) (*rawClient, int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, "", err
	}
	rc := &rawClient{c: c, br: bufio.NewReader(c)}
	status, head, err := rc.get(path, 10*time.Second)
	if err != nil {
		c.Close()
	}
	return rc, status, head, err
}

// get makes one GET on the connection and reads the whole response.
func (rc *rawClient) get(path string, timeout time.Duration) (int, string, error) {
	_ = rc.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(rc.c, "GET "+path+" HTTP/1.1\r\nHost: cellgate.test\r\n\r\n"); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	var head strings.Builder
	resp.Header.Write(&head)
	return resp.StatusCode, head.String(), nil
}

func (rc *rawClient) close() {
	if rc != nil {
		rc.c.Close()
	}
}

// readyz returns the status of GET /readyz on the admin address.
func readyz(t *testing.T, admin string) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Errorf("/readyz: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// brokenListener fails every Accept with a permanent error.
type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) { return nil, errors.New("listener broken") }

// TestReadyzFollowsDataPlane: when the data plane's Serve ends with an
// error (a permanent accept failure), /readyz answers 503 instead of
// staying "ready" with nobody accepting.
func TestReadyzFollowsDataPlane(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, cells: nil}
	c.opts.Listener = brokenListener{ln}
	cfg, err := configs.Parse([]byte(`node_name = "t"
[admin]
addr = "127.0.0.1:0"
[state]
path = `+strconv.Quote(filepath.Join(t.TempDir(), "j.db"))+`
[[cell]]
name = "a"
version = "v1"
weight = 1
endpoints = ["127.0.0.1:1"]
`), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.start(cfg)
	testwait.For(t, 10*time.Second, "/readyz 503 after the data plane stopped", func() bool { return readyz(t, c.node.AdminAddr()) == 503 })
	if c.node.Ready() {
		t.Error("Node.Ready true with a dead data plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = c.node.Shutdown(ctx)
	c.node = nil
	if err == nil || !strings.Contains(err.Error(), "listener broken") {
		t.Errorf("Shutdown: %v, want the serve error reported", err)
	}
}
