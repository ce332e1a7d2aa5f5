package cellgate_test

import (
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/democell"
	"github.com/cellgate/cellgate/internal/testtoml"
	"github.com/cellgate/cellgate/internal/testwait"
)

// TestLoopCoreNodeMetrics: a node on the default config (listen.core =
// "auto", the loop core on a plain Linux listener) serves on the loop and
// says so on /v1/status, and counts what it serves as a node on the
// goroutine core does — GETs and small POSTs the loop answers and a POST
// too large for it, which it hands over, alike, once each, in
// cellgate_requests_total and the duration histogram under protocol "h1".
func TestLoopCoreNodeMetrics(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the loop core is Linux only")
	}
	const gets, posts, big = 6, 2, 1
	const n = gets + posts + big
	// The [listen] core key each node gets ("": none, the default) and
	// the core it serves on.
	for _, tc := range []struct{ name, key, core string }{
		{"goroutine", `core = "goroutine"`, "goroutine"},
		{"default", "", "loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cell, err := democell.Start("stable", "v1")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cell.Close() })
			c := startFromText(t, testtoml.Head("loop-1", filepath.Join(t.TempDir(), "j.db"), tc.key)+
				testtoml.Cell("stable", "v1", 1, cell.Addr()))
			if got := statusNode(t, c.node.AdminAddr()).Core; got != tc.core {
				t.Errorf("/v1/status node.core %q, want %q", got, tc.core)
			}
			hc := &http.Client{Timeout: 20 * time.Second}
			t.Cleanup(hc.CloseIdleConnections)
			for i := 0; i < n; i++ {
				var resp *http.Response
				switch {
				case i < gets:
					resp, err = hc.Get(c.url())
				case i < gets+posts:
					resp, err = hc.Post(c.url(), "application/json", strings.NewReader(`{"prompt":"body"}`))
				default: // past the loop's 8 KiB (proxy/loopbody.go)
					resp, err = hc.Post(c.url(), "text/plain", strings.NewReader(strings.Repeat("b", 9<<10)))
				}
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained to finish the request
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Cellgate-Cell") != "stable" {
					t.Fatalf("request %d: %d, cell %q", i, resp.StatusCode, resp.Header.Get("X-Cellgate-Cell"))
				}
			}
			var reqs, durs map[string]int
			// Recorded as each finishes, maybe just after the client has
			// its answer: wait for all of them (a hang guard, not a time).
			testwait.For(t, 30*time.Second, "every request in /metrics", func() bool {
				reqs, durs = scrapeByProtocol(t, c.node.AdminAddr())
				return reqs["h1"] >= n && durs["h1"] >= n
			})
			if reqs["h1"] != n || durs["h1"] != n || len(reqs) != 1 {
				t.Errorf("requests_total %v, duration counts %v; want h1 = %d, once each", reqs, durs, n)
			}
			// The GETs and the small POSTs on the loop, the connection
			// handed over at the large POST.
			served, handed := scrapeValue(t, c.node.AdminAddr(), "cellgate_loop_requests_total"), scrapeValue(t, c.node.AdminAddr(), "cellgate_loop_handoffs_total")
			if want := map[string][2]float64{"goroutine": {0, 0}, "loop": {gets + posts, 1}}[tc.core]; served != want[0] || handed != want[1] {
				t.Errorf("cellgate_loop_requests_total %v, cellgate_loop_handoffs_total %v; want %v", served, handed, want)
			}
		})
	}
}

// scrapeValue is the value of an unlabelled series in /metrics.
func scrapeValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}
