package proxy

import (
	"regexp"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testchrome"
)

// TestWebSocketInChromium: a browser nobody here wrote opens a WebSocket
// through the proxy (behind the front door, as a node serves) to a real
// WebSocket upstream and gets every message echoed. The page comes through
// the proxy too, so the socket is same-origin, as a site's would be.
// internal/testchrome launches it; --dump-dom prints the DOM
// at the page's load event, which an iframe on /hold holds back until the
// WebSocket has ended, and the page writes its outcome into
// body[data-result].
func TestWebSocketInChromium(t *testing.T) {
	testchrome.Need(t, "the browser WebSocket test")
	if testing.Short() {
		t.Skip("starts a browser")
	}
	opts := wsOptions()
	// The page's /hold request lasts as long as the WebSocket: give it the
	// time a busy machine may need.
	opts.UpstreamReadTimeout = 60 * time.Second
	p, addr := startBehindFrontDoor(t, opts, startWSUpstream(t, "a"), nil)
	target := "http://" + addr
	out := testchrome.Run(t, "--dump-dom", target+"/page?n=50")
	m := regexp.MustCompile(`<body data-result="([^"]*)"`).FindSubmatch(out)
	if m == nil || string(m[1]) != "ok 50" {
		t.Fatalf("page result %q, want \"ok 50\"; DOM:\n%s", m, out)
	}
	if v, _ := metric(t, p, "cellgate_tunnels_total", map[string]string{"cell": "a", "code": "101"}); v != 1 {
		t.Fatalf("cellgate_tunnels_total{code=101} = %v, want 1", v)
	}
}
