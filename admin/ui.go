package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
)

// indexHTML is the whole status page: markup, style and vanilla JS in one
// file, so there is no build chain and nothing else to serve.
//
//go:embed ui/index.html
var indexHTML []byte

// uiAssets are the files the page loads besides itself: uPlot (vendored,
// ui/vendor/README) and the chart code shared with the rollout report.
var uiAssets = map[string]struct {
	body []byte
	ct   string
}{
	"/ui/uPlot.min.js":  {UPlotJS, "text/javascript; charset=utf-8"},
	"/ui/uPlot.min.css": {UPlotCSS, "text/css; charset=utf-8"},
	"/ui/charts.js":     {ChartsJS, "text/javascript; charset=utf-8"},
}

// UPlotJS, UPlotCSS and ChartsJS are the chart code, for pages that inline
// it (the rollout report).
var (
	//go:embed ui/vendor/uPlot.iife.min.js
	UPlotJS []byte
	//go:embed ui/vendor/uPlot.min.css
	UPlotCSS []byte
	//go:embed ui/charts.js
	ChartsJS []byte
)

// uiCSP is the page's Content-Security-Policy: nothing loads from
// anywhere, fetch may only reach this origin, and the one inline <style>
// and <script> run because their hashes are listed (no 'unsafe-inline').
var uiCSP = buildCSP(indexHTML)

// uiPage returns the page to serve; autotest flips the body's switch that
// lets ?autotest= click buttons (see Options.UIAutotest).
func uiPage(autotest bool) []byte {
	if !autotest {
		return indexHTML
	}
	return bytes.Replace(indexHTML, []byte(`data-autotest="off"`), []byte(`data-autotest="on"`), 1)
}

var inlineRE = regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)

// buildCSP hashes the page's inline blocks (CSP Level 3 hash sources).
func buildCSP(page []byte) string {
	var scripts, styles []string
	for _, m := range inlineRE.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[2])
		src := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if string(m[1]) == "script" {
			scripts = append(scripts, src)
		} else {
			styles = append(styles, src)
		}
	}
	return "default-src 'none'; connect-src 'self'; img-src 'self' data:; " +
		"script-src 'self' " + strings.Join(scripts, " ") + "; style-src 'self' " + strings.Join(styles, " ") +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// uiHandler serves the page at /ui/ (and /ui/index.html); anything else
// under /ui/ is a 404.
func (s *Server) uiHandler(w http.ResponseWriter, r *http.Request) {
	if a, ok := uiAssets[r.URL.Path]; ok {
		h := w.Header()
		h.Set("Content-Type", a.ct)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(a.body)
		return
	}
	if r.URL.Path != "/ui/" && r.URL.Path != "/ui/index.html" {
		writeError(w, NotFound("no such page %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(s.ui)
}
