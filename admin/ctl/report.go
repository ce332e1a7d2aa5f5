package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cellgate/cellgate/admin"
)

// Report is a rollout's report: what `ctl report -o FILE.json` writes, and
// what FILE.html draws. Rollout is GET /v1/rollouts/{id} as the node
// answered it (plan, release, status, steps, every decision with its
// verdict: the rollout's audit entries); History is GET
// /v1/history?rollout=ID (the journalled per-cell history behind the
// charts; for a flag rollout, per variant cohort).
type Report struct {
	Generated time.Time       `json:"generated"`
	Admin     string          `json:"admin"`
	Rollout   json.RawMessage `json:"rollout"`
	History   json.RawMessage `json:"history"`
}

// reportView is the part of the rollout the HTML's text shows.
type reportView struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	Ended   time.Time `json:"ended"`
	Plan    struct {
		Name     string    `json:"name"`
		Strategy string    `json:"strategy"`
		Targets  []string  `json:"targets"`
		Baseline []string  `json:"baseline"`
		Flag     string    `json:"flag"`
		Variant  string    `json:"variant"`
		Steps    []float64 `json:"steps"`
		Bake     string    `json:"bake"`
		Release  struct {
			Version string `json:"version"`
			Notes   string `json:"notes"`
		} `json:"release"`
	} `json:"plan"`
	Decisions []reportEvent `json:"decisions"`
}

type reportEvent struct {
	Seq         uint64             `json:"seq"`
	Time        time.Time          `json:"time"`
	Actor       string             `json:"actor"`
	Action      string             `json:"action"`
	Reason      string             `json:"reason"`
	Status      string             `json:"status"`
	Step        int                `json:"step"`
	StepPercent float64            `json:"step_percent"`
	After       map[string]float64 `json:"after"`
	Verdict     *struct {
		State  string `json:"state"`
		Rule   string `json:"rule"`
		Reason string `json:"reason"`
		Canary struct {
			Requests   uint64  `json:"requests"`
			ErrorRatio float64 `json:"error_ratio"`
			P99        int64   `json:"p99_ns"`
		} `json:"canary_stats"`
		Baseline struct {
			Requests   uint64  `json:"requests"`
			ErrorRatio float64 `json:"error_ratio"`
			P99        int64   `json:"p99_ns"`
		} `json:"baseline_stats"`
	} `json:"verdict"`
}

// reportStep is one plan step as the report lists it.
type reportStep struct {
	Percent float64
	Entered *reportEvent // nil: never reached
	Decided *reportEvent // the last judged decision while at this step
}

func (c *cmd) report(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fs.String("o", "", "output file: .html (self-contained page with charts) or .json")
	pos, err := parseArgs(fs, args, 1, "ROLLOUT_ID -o FILE.html|FILE.json")
	if err != nil {
		return err
	}
	html := strings.HasSuffix(*out, ".html") || strings.HasSuffix(*out, ".htm")
	if !html && !strings.HasSuffix(*out, ".json") {
		return usagef("report: -o FILE.html or -o FILE.json")
	}
	r := Report{Generated: time.Now().UTC(), Admin: c.c.base}
	if r.Rollout, err = c.c.do(ctx, "GET", "/v1/rollouts/"+url.PathEscape(pos[0]), nil); err != nil {
		return err
	}
	if r.History, err = c.c.do(ctx, "GET", "/v1/history?rollout="+url.QueryEscape(pos[0]), nil); err != nil {
		return err
	}
	var data []byte
	if html {
		data, err = r.HTML()
	} else {
		data, err = json.MarshalIndent(r, "", "  ")
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = fmt.Fprintf(c.stdout, "report of %s written to %s\n", pos[0], *out)
	return err
}

// HTML renders the report as one self-contained page: text from the
// rollout, charts drawn in the page by the status page's chart code and
// uPlot, both inlined, from the history inlined as JSON — no network.
func (r Report) HTML() ([]byte, error) {
	var v reportView
	if err := json.Unmarshal(r.Rollout, &v); err != nil {
		return nil, fmt.Errorf("report: rollout: %w", err)
	}
	var hist struct {
		Cells   map[string]json.RawMessage `json:"cells"`
		Cohorts map[string]json.RawMessage `json:"cohorts"`
		Step    int64                      `json:"step_s"`
		Node    string                     `json:"node"`
	}
	_ = json.Unmarshal(r.History, &hist)
	charts, err := json.Marshal(map[string]any{"cells": hist.Cells, "cohorts": hist.Cohorts, "decisions": v.Decisions})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = reportTemplate.Execute(&b, map[string]any{
		"R": r, "V": v, "Steps": reportSteps(v), "Step": hist.Step, "Node": hist.Node,
		"Data":     template.JS(charts),
		"UPlotJS":  template.JS(admin.UPlotJS),
		"ChartsJS": template.JS(admin.ChartsJS),
		"UPlotCSS": template.CSS(admin.UPlotCSS),
	})
	return b.Bytes(), err
}

// reportSteps pairs each plan step with the event that entered it and the
// last judged decision made while it held.
func reportSteps(v reportView) []reportStep {
	steps := make([]reportStep, len(v.Plan.Steps))
	for i, p := range v.Plan.Steps {
		steps[i].Percent = p
	}
	cur := -1
	for i := range v.Decisions {
		e := &v.Decisions[i]
		if e.Action == "step" && e.Step >= 1 && e.Step <= len(steps) {
			cur = e.Step - 1
			steps[cur].Entered = e
		}
		if e.Verdict != nil && cur >= 0 {
			steps[cur].Decided = e
		}
	}
	return steps
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.2f %%", 100*f) },
	"ms":  func(ns int64) string { return fmt.Sprintf("%.1f ms", float64(ns)/1e6) },
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rollout {{.V.ID}}: {{.V.Status}}</title>
<style>{{.UPlotCSS}}
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330}
table{border-collapse:collapse;margin:.5em 0}th,td{border-bottom:1px solid #dde1e8;padding:.25em .6em;text-align:left;vertical-align:top}
th{color:#6b7385;font-weight:500}.muted{color:#6b7385}h2{font-size:1.1em;margin-top:1.5em}
#outcome[data-status=rolled_back],#outcome[data-status=aborted]{color:#c53030}#outcome[data-status=promoted]{color:#1f8a4c}
</style></head><body>
<h1>Rollout {{.V.ID}}</h1>
<p>Outcome: <b id="outcome" data-status="{{.V.Status}}">{{.V.Status}}</b> {{if .V.Reason}}— {{.V.Reason}}{{end}}<br>
<span class="muted">started {{ts .V.Created}}, ended {{ts .V.Ended}}; report generated {{ts .R.Generated}} from {{.R.Admin}}{{if .Node}}, traffic as node {{.Node}} saw it{{end}}</span></p>
<h2>Plan and release</h2>
<table>
<tr><th>plan</th><td>{{.V.Plan.Name}} ({{.V.Plan.Strategy}})</td></tr>
{{if .V.Plan.Flag}}<tr><th>flag</th><td id="flag" data-flag="{{.V.Plan.Flag}}">{{.V.Plan.Flag}}, variant {{.V.Plan.Variant}} (charts: each variant's cohort)</td></tr>{{end}}
<tr><th>targets</th><td>{{range .V.Plan.Targets}}{{.}} {{end}}</td></tr>
<tr><th>baseline</th><td>{{range .V.Plan.Baseline}}{{.}} {{end}}</td></tr>
<tr><th>steps</th><td>{{range .V.Plan.Steps}}{{.}} % {{end}} (bake {{.V.Plan.Bake}})</td></tr>
<tr><th>release</th><td>{{.V.Plan.Release.Version}} {{.V.Plan.Release.Notes}}</td></tr>
</table>
<h2>Steps</h2>
<table id="steps"><tr><th>step</th><th>entered</th><th>verdict</th><th>{{if .V.Plan.Flag}}variant cohort{{else}}canary{{end}} requests / errors / p99</th><th>{{if .V.Plan.Flag}}control cohort{{else}}baseline{{end}} requests / errors / p99</th><th>decision</th></tr>
{{range $i, $s := .Steps}}<tr data-step="{{$s.Percent}}"><td>{{$s.Percent}} %</td><td>{{if $s.Entered}}{{ts $s.Entered.Time}}{{else}}not reached{{end}}</td>
{{with $s.Decided}}<td>{{.Verdict.State}} ({{.Verdict.Rule}})</td><td>{{.Verdict.Canary.Requests}} / {{pct .Verdict.Canary.ErrorRatio}} / {{ms .Verdict.Canary.P99}}</td><td>{{.Verdict.Baseline.Requests}} / {{pct .Verdict.Baseline.ErrorRatio}} / {{ms .Verdict.Baseline.P99}}</td><td>{{.Action}}: {{.Reason}}</td>{{else}}<td colspan="4" class="muted">no judged decision</td>{{end}}</tr>
{{end}}</table>
<h2>Charts <span class="muted">({{if .Step}}{{.Step}} s per point{{end}})</span></h2>
<div id="charts" data-points="0" data-cohort-points="0" data-markers=""></div>
<h2>Audit entries</h2>
<table id="audit"><tr><th>#</th><th>time</th><th>actor</th><th>action</th><th>status</th><th>step</th><th>weights after</th><th>reason</th></tr>
{{range .V.Decisions}}<tr><td>{{.Seq}}</td><td>{{ts .Time}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td>{{.Status}}</td><td>{{.Step}}{{if .StepPercent}} ({{.StepPercent}} %){{end}}</td><td>{{range $k, $w := .After}}{{$k}}={{$w}} {{end}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
<script>{{.UPlotJS}}</script>
<script>{{.ChartsJS}}</script>
<script>window.cellgateCharts.draw(document.getElementById("charts"), {{.Data}}, 1000);</script>
</body></html>
`))
