package cellgate_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cellgate/cellgate/configs"
)

// TestMetricsLintClean scrapes a node that has served traffic and a
// rollout, and lints the exposition with promlint — the checks behind
// `promtool check metrics`.
func TestMetricsLintClean(t *testing.T) {
	c := startCluster(t, `[routing]
sticky_key = ["header:X-User-ID"]`, canaryCells()...)
	for range 50 {
		resp, err := http.Get(c.url())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + c.node.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	problems, err := promlint.New(resp.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "cellgate_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestGrafanaDashboard checks the dashboard parses as Grafana's schema
// expects and that every panel's query names a metric the node exports.
func TestGrafanaDashboard(t *testing.T) {
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			ID      int                      `json:"id"`
			Type    string                   `json:"type"`
			Title   string                   `json:"title"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(configs.GrafanaDashboard(), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Fatalf("not a dashboard: %+v", d)
	}
	known := []string{
		"cellgate_requests_total", "cellgate_request_duration_seconds_bucket", "cellgate_ttfb_seconds_bucket",
		"cellgate_cell_weight", "cellgate_slo_burn_rate", "cellgate_rollout_step", "cellgate_rollout_state",
		"cellgate_upstream_endpoint_up", "cellgate_gossip_members",
	}
	metric := regexp.MustCompile(`cellgate_[a-z_]+`)
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.Type == "" || p.GridPos.W == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q: bad id, type, position or no query", p.Title)
		}
		ids[p.ID] = true
		for _, q := range p.Targets {
			names := metric.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q query %s names no cellgate metric", p.Title, q.RefID)
			}
			for _, n := range names {
				if !slices.Contains(known, n) {
					t.Errorf("panel %q queries %s, which the node does not export", p.Title, n)
				}
			}
		}
	}
}
