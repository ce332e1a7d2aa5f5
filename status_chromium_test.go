package cellgate_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/internal/testchrome"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/rollout"
)

// runChromium runs headless Chromium (internal/testchrome) in a window
// tall enough for the status page's charts, with args, and returns its
// standard output.
func runChromium(t *testing.T, args ...string) []byte {
	t.Helper()
	return testchrome.Run(t, append([]string{"--window-size=1280,1600"}, args...)...)
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

// TestRevertInChartsAndReport runs a flag rollout (new-ranker=on at 50 %)
// until its cohorts are in the history and aborts it, then a faulty
// canary until the judge reverts it, then loads the status page in
// headless Chromium: the charts are drawn from the node's history (not
// from what the tab saw) — the cells' with the revert among their
// markers, and the flag's variant cohorts' beside them. The page is saved
// as a screenshot artefact. Then `ctl report` writes each rollout's
// report as JSON (parsed) and as one HTML file, which Chromium opens from
// disk with the network off: the canary's charts render its cells with
// the revert marked, the flag rollout's its cohorts with the abort.
func TestRevertInChartsAndReport(t *testing.T) {
	testchrome.Need(t, "the headless status page test")
	if testing.Short() {
		t.Skip("runs a rollout and a browser")
	}
	c := startCluster(t, strings.Replace(flagHead("1s", "all"), `latency_threshold = "300ms"`, `latency_threshold = "10s"`, 1), canaryCells()...)
	l := startLoad(t, c.url(), 300, 1000)
	defer l.stop()
	flagID, err := c.node.Controller().Start(flagPlan(time.Minute, 50, 100), "test") // holds its 50 % step
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "3 seconds of the flag's variant cohort in the rollout's history", func() bool {
		n := 0
		for _, p := range getRolloutHistory(t, c, flagID).Cohorts["new-ranker=on"].Points {
			if p.Requests > 0 {
				n++
			}
		}
		return n >= 3
	})
	if err := c.node.Controller().Abort(flagID, "test", "charts test"); err != nil {
		t.Fatal(err)
	}
	id, err := c.node.Controller().Start(canaryPlan(time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "the canary taking traffic", func() bool {
		v, _ := c.node.Controller().Rollout(id)
		return v.Status.Terminal() || (v.Step >= 1 && c.node.Proxy().Weights()["canary-1"] > 0)
	})
	c.cells["canary-1"].SetErrorRatio(0.5)
	var v rollout.RolloutView
	testwait.For(t, 60*time.Second, "the revert", func() bool {
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
	if !regexp.MustCompile(`\brollback\b`).MatchString(markers[1]) || !regexp.MustCompile(`\bstart\b`).MatchString(markers[1]) ||
		!regexp.MustCompile(`\babort\b`).MatchString(markers[1]) {
		t.Errorf("chart markers %q, want the starts, the flag's abort and the revert (rollback)", markers[1])
	}
	if n, _ := strconv.Atoi(points[1]); n < 3 {
		t.Errorf("charts drawn from %s points", points[1])
	}
	checkCohortCharts(t, "status page", dom, tag)
	if n := len(regexp.MustCompile(`<canvas`).FindAllString(dom, -1)); n < 6 {
		t.Errorf("%d canvases, want the cells' 3 charts and the flag's 3", n)
	}
	shot := filepath.Join(artefactDir(t), "status-page-revert.png")
	runChromium(t, "--virtual-time-budget=4000", "--screenshot="+shot, url)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s (markers %s, %s points)", shot, markers[1], points[1])
	checkReport(t, c, id, reportWant{status: rollout.StatusRolledBack, action: rollout.ActionRollback, series: "canary-1", shot: "rollout-report.png"})
	checkReport(t, c, flagID, reportWant{status: rollout.StatusAborted, action: rollout.ActionAbort, series: "new-ranker=on", shot: "flag-rollout-report.png"})
}

// checkCohortCharts checks that the #charts element (tag, in dom) drew
// new-ranker's two variant cohorts from some points, in charts of their
// own.
func checkCohortCharts(t *testing.T, what, dom, tag string) {
	t.Helper()
	cohorts := regexp.MustCompile(`data-cohorts="([^"]*)"`).FindStringSubmatch(tag)
	points := regexp.MustCompile(`data-cohort-points="(\d+)"`).FindStringSubmatch(tag)
	if cohorts == nil || cohorts[1] != "new-ranker=off,new-ranker=on" || points == nil {
		t.Fatalf("%s: #charts tag %q, want new-ranker's cohorts drawn", what, tag)
	}
	if n, _ := strconv.Atoi(points[1]); n < 2 {
		t.Errorf("%s: cohort charts drawn from %s points", what, points[1])
	}
	if n := len(regexp.MustCompile(`<div class="chart" data-chart="flag new-ranker: [^"]*" data-flag="new-ranker"><div class="uplot`).FindAllString(dom, -1)); n != 3 {
		t.Errorf("%s: %d uPlot charts of new-ranker's cohorts, want 3", what, n)
	}
}

// reportWant is what checkReport expects of a rollout's report.
type reportWant struct {
	status rollout.Status
	action string // its last decision, marked on the charts
	series string // a cell, or a "flag=variant" cohort, the charts draw
	shot   string // the screenshot artefact's name
}

// checkReport writes rollout id's report with ctl as JSON and HTML and
// checks both.
func checkReport(t *testing.T, c *cluster, id string, want reportWant) {
	t.Helper()
	rep := readReport(t, c, id)
	var decided bool
	for _, e := range rep.Rollout.Decisions {
		decided = decided || (e.Action == want.action && (want.action != rollout.ActionRollback || e.Verdict != nil))
	}
	_, _, cohort := flags.SplitCellName(want.series)
	pts := rep.History.Cells[want.series]
	if cohort {
		pts = rep.History.Cohorts[want.series].Points
	}
	if rep.Rollout.Status != want.status || !decided || len(pts) == 0 {
		t.Errorf("report.json: status %s, %s decided %v, %d %s points; want %s", rep.Rollout.Status, want.action, decided, len(pts), want.series, want.status)
	}
	page := writeReport(t, c, id, t.TempDir(), "report.html")
	// No network: the proxy flag sends any fetch to a dead address.
	dom := string(runChromium(t, "--proxy-server=127.0.0.1:1", "--virtual-time-budget=3000", "--dump-dom", "file://"+page))
	tag := regexp.MustCompile(`<div[^>]*\bid="charts"[^>]*>`).FindString(dom)
	if m := regexp.MustCompile(`data-markers="([^"]*)"`).FindStringSubmatch(tag); m == nil || !regexp.MustCompile(`\b`+want.action+`\b`).MatchString(m[1]) {
		t.Errorf("report charts: %q, want the %s marked", tag, want.action)
	}
	if n := len(regexp.MustCompile(`<canvas`).FindAllString(dom, -1)); n < 3 {
		t.Errorf("report: %d canvases, want 3 charts", n)
	}
	if cohort {
		checkCohortCharts(t, "report", dom, tag)
		if !strings.Contains(dom, `id="flag" data-flag="new-ranker"`) || !strings.Contains(dom, "variant cohort requests") {
			t.Errorf("the flag rollout's report does not name its flag and cohorts")
		}
	} else if m := regexp.MustCompile(`data-cells="([^"]*)"`).FindStringSubmatch(tag); m == nil || !strings.Contains(","+m[1]+",", ","+want.series+",") {
		t.Errorf("report charts: %q, want %s drawn", tag, want.series)
	}
	if !regexp.MustCompile(`id="outcome" data-status="` + string(want.status) + `"`).MatchString(dom) {
		t.Errorf("report does not state the outcome %s", want.status)
	}
	runChromium(t, "--proxy-server=127.0.0.1:1", "--virtual-time-budget=3000", "--screenshot="+filepath.Join(artefactDir(t), want.shot), "file://"+page)
}
