package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func TestUIPage(t *testing.T) {
	h := newHarness(t, Options{})
	res := h.do("GET", "/ui/", "", "")
	if res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	page := string(res.body)
	// The stable hooks the browser test and operators' scripts rely on.
	for _, want := range []string{
		`id="rollout-status"`, `id="rollout-steps"`, `id="cells"`, `id="audit"`, `id="action-result"`,
		`data-action="pause"`, `data-action="resume"`, `data-action="approve"`, `data-action="abort"`,
		`id="node-core"`, `data-autotest="off"`, `"/v1/status"`, "/v1/audit?since=", "sessionStorage",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "innerHTML") {
		t.Error("page uses innerHTML; server data must go through textContent")
	}
	// The CSP lists the hash of the inline script, so the page runs.
	csp := res.header.Get("Content-Security-Policy")
	start := strings.Index(page, "<script>") + len("<script>")
	end := start + strings.Index(page[start:], "</script>")
	sum := sha256.Sum256([]byte(page[start:end]))
	if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, "script-src 'self' "+want) {
		t.Errorf("CSP %q lacks script hash %s", csp, want)
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows unsafe-inline: %q", csp)
	}
}

// TestUIAssets: the chart code the page loads is served from the binary
// (no network), with its type.
func TestUIAssets(t *testing.T) {
	h := newHarness(t, Options{})
	for path, want := range map[string]string{
		"/ui/uPlot.min.js": "text/javascript", "/ui/charts.js": "text/javascript", "/ui/uPlot.min.css": "text/css",
	} {
		res := h.do("GET", path, "", "")
		if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), want) || len(res.body) < 100 {
			t.Errorf("%s: %d %q, %d bytes", path, res.status, res.header.Get("Content-Type"), len(res.body))
		}
	}
}

func TestUIRoutes(t *testing.T) {
	h := newHarness(t, Options{UIAutotest: true})
	if res := h.do("GET", "/ui/index.html", "", ""); res.status != 200 || !strings.Contains(string(res.body), `data-autotest="on"`) {
		t.Errorf("/ui/index.html: %d, autotest switch not on", res.status)
	}
	if res := h.do("GET", "/ui/other.js", "", ""); res.status != 404 || res.errBody(t).Code != CodeNotFound {
		t.Errorf("/ui/other.js: %d", res.status)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, loc := range map[string]string{"/": "/ui/", "/ui": "/ui/"} {
		res, err := client.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Location"); res.StatusCode/100 != 3 || got != loc {
			t.Errorf("GET %s: %d Location %q, want a redirect to %s", path, res.StatusCode, got, loc)
		}
	}
}
