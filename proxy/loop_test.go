//go:build linux

package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/internal/testh1"
	"github.com/cellgate/cellgate/internal/testwait"
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
	get := func() {
		t.Helper()
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
	for i := 0; i < 5; i++ {
		get()
	}
	// A weight change and a pool renewal build new routing snapshots: the
	// loop keeps serving (a snapshot that forgot it is plain HTTP/1.1 once
	// handed every request over).
	if err := p.SetWeights(map[string]float64{"a": 2}); err != nil {
		t.Fatal(err)
	}
	o := p.Options()
	o.MaxConnsPerEndpoint++
	if err := p.SetOptions(o); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		get()
	}
	if s := p.LoopStats(); s.Served != 10 || s.Handed != 0 || s.ParsedHeads != 0 {
		t.Fatalf("loop stats %+v, want 10 served, none handed, every response head simple", s)
	}
	if got := n.Load(); got != 10 {
		t.Fatalf("upstream saw %d requests, want 10", got)
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

// loopProxy serves a proxy on core behind the front door (serveProxy),
// one cell "a" on up.
func loopProxy(t *testing.T, core string, up string, mods ...func(*Options)) (*Proxy, string) {
	t.Helper()
	opts := testOptions()
	opts.Core = core
	for _, m := range mods {
		m(&opts)
	}
	p, err := New(opts, 42, []CellSpec{{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return p, serveProxy(t, p, nil)
}

// TestLoopSameBytesAsGoroutineCore: what a client reads for the same
// exchanges — served by the loop, handed over (a body, an Upgrade, an
// HTTP/1.0 request) or refused by the front door — is byte for byte what
// the goroutine core sends, and the loop handed over exactly the
// exchanges it does not serve.
func TestLoopSameBytesAsGoroutineCore(t *testing.T) {
	const upResp = "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name   string
		req    string
		handed bool
	}{
		{"GET", "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nCookie: a=\"1 2\"\r\nConnection: close\r\n\r\n", false},
		{"two pipelined GETs", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"GET then POST", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz", false},
		{"chunked POST", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nz\r\n0\r\n\r\n", true},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", true},
		{"Expect", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nz", false},
		{"Expect without a body", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", false},
		{"Expect in capitals, then a GET", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\nabc" +
			"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"Expect with a 6 KiB body (the loop's buffer grows)", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6144\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" +
			strings.Repeat("e", 6<<10), false},
		{"Expect with a body past the loop's bound", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" +
			strings.Repeat("e", 9000), true},
		{"Expect named in other capitals (no 100 Continue from either core)", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nEXPECT: 100-continue\r\nConnection: close\r\n\r\nz", false},
		{"another expectation", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 200-ok\r\nConnection: close\r\n\r\nz", true},
		{"GET with a 10 KiB head (the loop's buffer grows)", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 2<<10)+"\r\n", 5) + "Connection: close\r\n\r\n", false},
		{"front door refuses a 40 KiB field", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\nConnection: close\r\n\r\n", true},
		{"front door refuses two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", true},
		{"front door refuses a bad line end after a served GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\nHost: x\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, core := range []string{CoreGoroutine, CoreLoop} {
				rec := startRecorder(t, upResp)
				p, addr := loopProxy(t, core, rec.addr, func(o *Options) {
					o.ReadBufferSize = 40 << 10 // as a node sizes it: the front door's line and header limits
				})
				got[core] = maskDate(rawExchange(t, addr, tc.req, nil))
				if core == CoreLoop {
					if s := p.LoopStats(); (s.Handed == 1) != tc.handed || s.Handed > 1 {
						t.Errorf("loop stats %+v; want handed %v", s, tc.handed)
					}
				}
			}
			if got[CoreLoop] != got[CoreGoroutine] {
				t.Errorf("loop core sent\n%q\ngoroutine core sent\n%q", got[CoreLoop], got[CoreGoroutine])
			}
			if got[CoreLoop] == "" {
				t.Error("no answer")
			}
		})
	}
}

// TestLoopPOSTSentOnce: a POST with a small body reaches the upstream
// once, with its body, through real clients (net/http and curl), and the
// loop serves it and the requests around it on the same connection
// (loopbody.go): nothing is handed over.
func TestLoopPOSTSentOnce(t *testing.T) {
	var posts, gets atomic.Int64
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			gets.Add(1)
		}
		_, _ = w.Write(append([]byte(r.Method+":"), b...))
	}))
	p, addr := loopProxy(t, CoreLoop, up)
	c := httpClient(t)
	for i, step := range []struct{ method, body, want string }{
		{"GET", "", "GET:"}, {"POST", "hello", "POST:hello"}, {"GET", "", "GET:"},
	} {
		req, _ := http.NewRequest(step.method, "http://"+addr+"/", strings.NewReader(step.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != step.want {
			t.Fatalf("step %d: %q, want %q", i, b, step.want)
		}
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--max-time", "10", "-d", "from-curl", "http://"+addr+"/p", "--next", "http://"+addr+"/g").CombinedOutput()
		if err != nil || string(out) != "POST:from-curlGET:" {
			t.Fatalf("curl: %v %q", err, out)
		}
	} else {
		t.Log("curl not installed: net/http only")
	}
	wantPosts := int64(1)
	if hasCurl() {
		wantPosts = 2
	}
	if posts.Load() != wantPosts {
		t.Errorf("upstream saw %d POSTs", posts.Load())
	}
	s := p.LoopStats()
	t.Logf("loop core: %+v, GETs upstream %d", s, gets.Load())
	if want := uint64(3 + 2*(wantPosts-1)); s.Served != want || s.Handed != 0 {
		t.Errorf("loop stats %+v: want %d served by the loop, none handed over", s, want)
	}
}

func hasCurl() bool {
	_, err := exec.LookPath("curl")
	return err == nil
}

// TestLoopTimeouts: the loop enforces read_timeout (a head left
// unfinished gets fasthttp's 408 and a close), idle_timeout (an idle
// connection is closed) and the upstream's response timeout (504
// upstream-timeout), as the goroutine core does.
func TestLoopTimeouts(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	up := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			head, err := testh1.ReadHead(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(head, "GET /hang") {
				<-hang
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for _, core := range []string{CoreGoroutine, CoreLoop} {
		t.Run(core, func(t *testing.T) {
			_, addr := loopProxy(t, core, up, func(o *Options) {
				// Long enough that a loaded machine's client gets its
				// request out before read_timeout: the outcomes are asserted,
				// not the times.
				o.ReadTimeout, o.IdleTimeout = time.Second, time.Second
				o.UpstreamReadTimeout = time.Second
			})
			got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n", nil) // no blank line
			if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
				t.Errorf("unfinished head: %q, want a 408", got)
			}
			got = rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", nil) // then idle
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "ok") {
				t.Errorf("idle connection: %q, want one 200 and a close", got)
			}
			got = rawExchange(t, addr, "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
			if !strings.HasPrefix(got, "HTTP/1.1 504 ") || !strings.Contains(got, "X-Cellgate-Error: upstream-timeout") {
				t.Errorf("hung upstream: %q, want 504 upstream-timeout", got)
			}
		})
	}
}

// TestLoopAllocs: a request on the loop's fast path allocates nothing in
// steady state (client, loop and upstream of this process together),
// with no request body or a 1 KiB one the loop buffers (loopbody.go) —
// or a 6 KiB one, which grows the connection's read buffer for each
// request and gives it back after (loopbuf.go).
func TestLoopAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, tc := range []struct{ size, reqBody int }{{16, 0}, {4 << 10, 0}, {200 << 10, 0}, {16, 1 << 10}, {16, 6 << 10}} {
		t.Run(fmt.Sprintf("body=%d,request body=%d", tc.size, tc.reqBody), func(t *testing.T) {
			var reqBody []byte
			if tc.reqBody > 0 {
				reqBody = make([]byte, tc.reqBody)
			}
			opts := loopOptions()
			opts.ReadBufferSize = 40 << 10 // as a node sizes it: room for a 6 KiB body
			p := servedAllocsBody(t, opts, tc.size, reqBody)
			if s := p.LoopStats(); s.Served < allocRuns || s.Handed != 0 || s.ParsedHeads != 0 {
				t.Errorf("loop stats %+v: the requests did not all take the loop's fast path (and its simple response head)", s)
			}
		})
	}
}

// TestLoopMaxConnsPerEndpoint: the loop's pool respects
// max_conns_per_endpoint: a request that needs a connection past it is
// answered 503 upstream-busy.
func TestLoopMaxConnsPerEndpoint(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	arrived := make(chan struct{}, 4)
	up := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			if _, err := testh1.ReadHead(br); err != nil {
				return
			}
			arrived <- struct{}{}
			<-release
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, addr := loopProxy(t, CoreLoop, up, func(o *Options) { o.MaxConnsPerEndpoint = 1 })
	first := make(chan string, 1)
	go func() { first <- rawExchange(t, addr, "GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the upstream")
	}
	got := rawExchange(t, addr, "GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 503 ") || !strings.Contains(got, "X-Cellgate-Error: upstream-busy") {
		t.Errorf("second request past the cap: %q, want 503 upstream-busy", got)
	}
	once.Do(func() { close(release) })
	if got := <-first; !strings.HasSuffix(got, "\r\n\r\nok") {
		t.Errorf("first request: %q", got)
	}
}

// TestLoopSameErrorBytes: the loop's own answers — an upstream that
// refuses (502), one that never answers (504), a head left unfinished
// past read_timeout (408) — are byte for byte the goroutine core's (the
// Date value aside).
func TestLoopSameErrorBytes(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	silent := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		<-hang
	})
	dead := deadAddr(t)
	for _, tc := range []struct{ name, up, req string }{
		{"refused", dead, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"timeout", silent, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"HEAD refused", dead, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"unfinished head", dead, "GET / HTTP/1.1\r\nHost: x\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, core := range []string{CoreGoroutine, CoreLoop} {
				_, addr := loopProxy(t, core, tc.up, func(o *Options) {
					o.ReadTimeout, o.UpstreamReadTimeout = time.Second, time.Second
				})
				got[core] = maskDate(rawExchange(t, addr, tc.req, nil))
			}
			if got[CoreLoop] != got[CoreGoroutine] || got[CoreLoop] == "" {
				t.Errorf("loop core sent\n%q\ngoroutine core sent\n%q", got[CoreLoop], got[CoreGoroutine])
			}
		})
	}
}

// TestLoopPipelinedBackpressure: a client that pipelines many requests for
// large bodies and reads slowly gets every response whole and in order:
// the loop stops reading the client while a request is under way and the
// upstream while the client has not taken the last bytes.
func TestLoopPipelinedBackpressure(t *testing.T) {
	const n, size = 20, 1 << 20
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		b := make([]byte, size)
		for i := range b {
			b[i] = ctx.Path()[1] // each response's bytes say which request it answers
		}
		ctx.SetBody(b)
	})
	p, addr := startProxy(t, loopOptions(), []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	// A small receive window (set before connect, so it is the one
	// negotiated) makes the loop's writes to the client fill up.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var reqs strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&reqs, "GET /%c HTTP/1.1\r\nHost: x\r\n\r\n", 'a'+i%26)
	}
	go func() { _, _ = io.WriteString(c, reqs.String()) }()
	br := bufio.NewReaderSize(c, 512) // a slow reader: small reads
	var resp fasthttp.Response
	for i := 0; i < n; i++ {
		if err := resp.Read(br); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b := resp.Body()
		want := byte('a' + i%26)
		if resp.StatusCode() != 200 || len(b) != size || b[0] != want || b[size-1] != want {
			t.Fatalf("response %d: status %d, %d bytes, first %q: not request %d's", i, resp.StatusCode(), len(b), b[:1], i)
		}
	}
	if s := p.LoopStats(); s.Served != n || s.Handed != 0 {
		t.Errorf("loop stats %+v, want %d served", s, n)
	}
}

// TestLoopProbeOffLoop: with passive ejection on, a reset before any
// response byte makes noteFailure dial the endpoint to confirm it is gone;
// that dial runs off the loop. Here it is held until the test lets it go,
// and meanwhile the loop — the only one — answers another client's
// request; then the first request gets its answer too (its failover cell's:
// the dial found the endpoint listening, so it was a lost request).
func TestLoopProbeOffLoop(t *testing.T) {
	d := newDropper(t, "") // resets after reading the request
	opts := loopOptions()
	opts.loops = 1
	opts.EjectAfter, opts.EjectBackoff = 5, time.Second
	opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
	p, err := New(opts, 42, []CellSpec{
		{Name: "a", Weight: 1, Endpoints: []string{d.addr}},
		{Name: "b", Weight: 1, Endpoints: []string{newKillable(t, cellNamed("b")).addr}},
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	probing := make(chan struct{}, 1)
	ep := p.snap.Load().cells[0].endpoints[0]
	dial := ep.client.Dial
	ep.client.Dial = func(addr string) (net.Conn, error) { // unreachable's confirming dial
		probing <- struct{}{}
		<-release
		return dial(addr)
	}
	addr := serveProxy(t, p, nil)
	// After serveProxy's, so it runs before the proxy's shutdown: a loop
	// held in the dial (the property broken) would never stop.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	first := make(chan string, 1)
	go func() {
		first <- rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-User-ID: "+keyOf(p, 0)+"\r\nConnection: close\r\n\r\n", nil)
	}()
	select {
	case <-probing:
	case <-time.After(20 * time.Second):
		t.Fatal("no confirming dial: the reset did not reach passive health")
	}
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-User-ID: "+keyOf(p, 1)+"\r\nConnection: close\r\n\r\n", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\nb") {
		t.Errorf("while a confirming dial was held: %q, want b's 200", got)
	}
	once.Do(func() { close(release) })
	if got := <-first; !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\nb") {
		t.Errorf("the request whose attempt was reset: %q, want its failover cell b's 200", got)
	}
}

// keyOf is the first X-User-ID key ("user-N") p's table routes to cell.
func keyOf(p *Proxy, cell int) string {
	tab := p.snap.Load().table
	for u := 0; ; u++ {
		if k := fmt.Sprint("user-", u); tab.PickKey([]byte(k)) == cell {
			return k
		}
	}
}

// TestLoopPeerPerConnection: the loop works a connection's client address
// out once (givePeer) and writes it into X-Forwarded-For and Forwarded on
// each of its requests; a connection from another address — on a
// recycled connection's state, as closed ones are reused — gets its own.
func TestLoopPeerPerConnection(t *testing.T) {
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("Forwarded"))
	}))
	p, addr := startProxy(t, loopOptions(), []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, Hooks{})
	for i := range 8 {
		from := fmt.Sprintf("127.0.0.%d", 1+i%4)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		for range 2 {
			body := keepAliveGet(t, conn, br)
			if want := from + "|for=" + from + ";proto=http;host=h"; string(body) != want {
				t.Fatalf("connection %d from %s: upstream saw %q, want %q", i, from, body, want)
			}
		}
		conn.Close()
	}
	if s := p.LoopStats(); s.Served != 16 {
		t.Fatalf("loop stats %+v, want 16 served", s)
	}
}

// keepAliveGet sends "GET /" on conn, a keep-alive connection read through
// br, and returns the response's body.
func keepAliveGet(t *testing.T, conn net.Conn, br *bufio.Reader) []byte {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestLoopRequestTimePerRequest: the loop sets a connection's request
// context up once (Init2) and each request's time from its batch clock
// (st.start, which the access log, the override cookie's and the pins'
// expiry read): the second request of a keep-alive connection, sent after
// a pause, starts after the pause, not when the connection did.
func TestLoopRequestTimePerRequest(t *testing.T) {
	const pause = 50 * time.Millisecond
	up := netHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.New(accesslog.Config{Path: path, Sample: 1, Secret: []byte("s")}, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	_, addr := startProxy(t, loopOptions(), []CellSpec{{Name: "a", Version: "v1", Endpoints: []string{up}, Weight: 1}}, Hooks{AccessLog: al})
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 2 {
		if i > 0 {
			time.Sleep(pause) // the input: time passes between the requests
		}
		keepAliveGet(t, conn, br)
	}
	testwait.For(t, 30*time.Second, "2 access log lines", func() bool { return al.Written() == 2 })
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for line := range strings.Lines(string(raw)) {
		var l struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		starts = append(starts, l.Time)
	}
	if len(starts) != 2 || starts[1].Sub(starts[0]) < pause {
		t.Fatalf("request starts %v, want the second ≥ %v after the first", starts, pause)
	}
}

// TestLoopSpareStates: a loop's released reqStates go back to its own free
// list and are reused from it, up to maxSpareStates; past that they go to
// the proxy's pool, so a burst of requests leaves no more than that held.
func TestLoopSpareStates(t *testing.T) {
	p, err := New(loopOptions(), 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{"127.0.0.1:1"}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{lc: &loopCore{p: p}, p: p}
	st := l.acquireState()
	st.release()
	if len(l.states) != 1 || l.acquireState() != st {
		t.Fatalf("a released state is not reused from the loop's list (%d spare)", len(l.states))
	}
	burst := make([]*reqState, maxSpareStates+10)
	for i := range burst {
		burst[i] = l.acquireState()
	}
	for _, st := range burst {
		st.release()
	}
	if len(l.states) != maxSpareStates {
		t.Fatalf("%d spare states after a burst of %d, want %d", len(l.states), len(burst), maxSpareStates)
	}
	if st := p.acquireState(); st.spare != nil {
		t.Fatal("a state from the pool still names a loop's list")
	}
}
