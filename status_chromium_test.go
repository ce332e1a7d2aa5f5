package cellgate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cellgate/cellgate"
	"github.com/cellgate/cellgate/admin/ctl"
	"github.com/cellgate/cellgate/rollout"
)

const chromium = "/usr/bin/chromium"

// runChromium runs headless Chromium with args (plus the flags every run
// needs) and returns its standard output.
func runChromium(t *testing.T, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check",
		"--user-data-dir=" + dir, "--window-size=1280,1600"}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// artefactDir is where browser tests leave their screenshots:
// $CELLGATE_ARTIFACTS, else cellgate-artifacts in the temp directory.
func artefactDir(t *testing.T) string {
	dir := os.Getenv("CELLGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cellgate-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRevertInChartsAndReport runs a faulty canary until the judge
// reverts it, then loads the status page in headless Chromium: the charts
// are drawn from the node's history (not from what the tab saw) with the
// revert among their markers. The page is saved as a screenshot artefact.
// Then `ctl report` writes the rollout's report as JSON (parsed) and as
// one HTML file, which Chromium opens from disk with the network off and
// whose charts render with the revert marked.
func TestRevertInChartsAndReport(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no %s: the headless status page test needs Debian's chromium", chromium)
	}
	if testing.Short() {
		t.Skip("runs a rollout and a browser")
	}
	c := startCluster(t, fmt.Sprintf(e2eHead, "1s"), canaryCells()...)
	l := startLoad(t, c.url(), 300, 1000)
	defer l.stop()
	id, err := c.node.Controller().Start(canaryPlan(time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the canary taking traffic", 60*time.Second, func() bool {
		v, _ := c.node.Controller().Rollout(id)
		return v.Status.Terminal() || (v.Step >= 1 && c.node.Proxy().Weights()["canary-1"] > 0)
	})
	c.cells["canary-1"].SetErrorRatio(0.5)
	var v rollout.RolloutView
	waitFor(t, "the revert", 60*time.Second, func() bool {
		v, _ = c.node.Controller().Rollout(id)
		return v.Status.Terminal()
	})
	if v.Status != rollout.StatusRolledBack {
		t.Fatalf("rollout %s, want rolled_back; decisions:\n%s", v.Status, decisions(v))
	}
	url := "http://" + c.node.AdminAddr() + "/ui/"
	dom := string(runChromium(t, "--virtual-time-budget=4000", "--dump-dom", url))
	tag := regexp.MustCompile(`<div[^>]*\bid="charts"[^>]*>`).FindString(dom)
	markers := regexp.MustCompile(`data-markers="([^"]*)"`).FindStringSubmatch(tag)
	points := regexp.MustCompile(`data-points="(\d+)"`).FindStringSubmatch(tag)
	if markers == nil || points == nil {
		t.Fatalf("#charts tag %q in the DOM", tag)
	}
	if !regexp.MustCompile(`\brollback\b`).MatchString(markers[1]) || !regexp.MustCompile(`\bstart\b`).MatchString(markers[1]) {
		t.Errorf("chart markers %q, want the start and the revert (rollback)", markers[1])
	}
	if n, _ := strconv.Atoi(points[1]); n < 3 {
		t.Errorf("charts drawn from %s points", points[1])
	}
	if n := len(regexp.MustCompile(`<canvas`).FindAllString(dom, -1)); n < 3 {
		t.Errorf("%d canvases, want the 3 charts", n)
	}
	shot := filepath.Join(artefactDir(t), "status-page-revert.png")
	runChromium(t, "--virtual-time-budget=4000", "--screenshot="+shot, url)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s (markers %s, %s points)", shot, markers[1], points[1])
	checkReport(t, c, id)
}

// checkReport writes rollout id's report with ctl as JSON and HTML and
// checks both.
func checkReport(t *testing.T, c *cluster, id string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"report.json", "report.html"} {
		var out, errOut bytes.Buffer
		if code := ctl.Main([]string{"-admin", "http://" + c.node.AdminAddr(), "report", id, "-o", filepath.Join(dir, f)}, &out, &errOut); code != 0 {
			t.Fatalf("ctl report -o %s: exit %d: %s%s", f, code, out.String(), errOut.String())
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	var rep struct {
		Rollout rollout.RolloutView     `json:"rollout"`
		History cellgate.RolloutHistory `json:"history"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	var rolledBack bool
	for _, e := range rep.Rollout.Decisions {
		rolledBack = rolledBack || (e.Action == rollout.ActionRollback && e.Verdict != nil)
	}
	if rep.Rollout.Status != rollout.StatusRolledBack || !rolledBack || len(rep.History.Cells["canary-1"]) == 0 {
		t.Errorf("report.json: status %s, judged rollback %v, %d canary points", rep.Rollout.Status, rolledBack, len(rep.History.Cells["canary-1"]))
	}
	page := filepath.Join(dir, "report.html")
	// No network: the proxy flag sends any fetch to a dead address.
	dom := string(runChromium(t, "--proxy-server=127.0.0.1:1", "--virtual-time-budget=3000", "--dump-dom", "file://"+page))
	tag := regexp.MustCompile(`<div[^>]*\bid="charts"[^>]*>`).FindString(dom)
	if m := regexp.MustCompile(`data-markers="([^"]*)"`).FindStringSubmatch(tag); m == nil || !regexp.MustCompile(`\brollback\b`).MatchString(m[1]) {
		t.Errorf("report charts: %q, want the rollback marked", tag)
	}
	if n := len(regexp.MustCompile(`<canvas`).FindAllString(dom, -1)); n < 3 {
		t.Errorf("report: %d canvases, want 3 charts", n)
	}
	if !regexp.MustCompile(`id="outcome" data-status="rolled_back"`).MatchString(dom) {
		t.Errorf("report does not state the outcome rolled_back")
	}
	runChromium(t, "--proxy-server=127.0.0.1:1", "--virtual-time-budget=3000", "--screenshot="+filepath.Join(artefactDir(t), "rollout-report.png"), "file://"+page)
}
