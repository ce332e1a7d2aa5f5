package proxy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// chromiumBin is Debian's chromium; the test skips without it.
const chromiumBin = "/usr/bin/chromium"

// TestWebSocketInChromium: a browser nobody here wrote opens a WebSocket
// through the proxy (behind the front door, as a node serves) to a real
// WebSocket upstream and gets every message echoed. The page comes through
// the proxy too, so the socket is same-origin, as a site's would be.
// Launch flags as in admin/chromium_test.go; --dump-dom prints the DOM
// at the page's load event, which an iframe on /hold holds back until the
// WebSocket has ended, and the page writes its outcome into
// body[data-result].
func TestWebSocketInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Skipf("no %s: the browser WebSocket test needs Debian's chromium", chromiumBin)
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	opts := wsOptions()
	// The page's /hold request lasts as long as the WebSocket: give it the
	// time a busy machine may need.
	opts.UpstreamReadTimeout = 60 * time.Second
	p, addr := startBehindFrontDoor(t, opts, startWSUpstream(t, "a"), nil)
	target := "http://" + addr
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumBin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check",
		"--user-data-dir="+dir, "--dump-dom",
		target+"/page?n=50")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`<body data-result="([^"]*)"`).FindSubmatch(out)
	if m == nil || string(m[1]) != "ok 50" {
		t.Fatalf("page result %q, want \"ok 50\"; DOM:\n%s", m, out)
	}
	if v, _ := metric(t, p, "cellgate_tunnels_total", map[string]string{"cell": "a", "code": "101"}); v != 1 {
		t.Fatalf("cellgate_tunnels_total{code=101} = %v, want 1", v)
	}
}
