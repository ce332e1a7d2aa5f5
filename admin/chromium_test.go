package admin

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/internal/testchrome"
)

// The status page is tested in headless Chromium without the DevTools
// protocol: `chromium --headless --dump-dom --virtual-time-budget=…` loads
// the page, runs its scripts (virtual time does not advance while fetches
// are pending, so polls complete) and prints the resulting DOM. To click,
// the server is built with Options.UIAutotest, which lets the page honour
// ?autotest=ACTION&token=T: after its first poll it stores T as the tab's
// token and calls .click() on its own button[data-action=ACTION], which
// runs the same handler and fetch a person's click does. The test then
// checks the fake backend received the action with the token's actor and
// that the dumped DOM shows the new status.

// dumpDOM runs headless Chromium on url and returns the DOM after
// budgetMs of virtual time.
func dumpDOM(t *testing.T, url string, budgetMs int) string {
	t.Helper()
	return string(testchrome.Run(t, "--virtual-time-budget="+strconv.Itoa(budgetMs), "--dump-dom", url))
}

// attr returns the value of attribute name on the element with id in dom.
func attr(t *testing.T, dom, id, name string) string {
	t.Helper()
	tag := regexp.MustCompile(`<[a-z]+[^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(dom)
	if tag == "" {
		t.Fatalf("no element #%s in the DOM:\n%s", id, dom)
	}
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return m[1]
}

// chartHistory is a GET /v1/history document with two cells, a flag's
// two variant cohorts and two decisions.
const chartHistory = `{"node": "node-1", "view": "node", "cells": {
 "stable-a": [{"t": 1700000000, "requests": 90, "weight": 95, "share": 0.9, "p99_ms": 20}, {"t": 1700000001, "requests": 80, "weight": 95, "share": 0.8, "p99_ms": 22}],
 "canary-1": [{"t": 1700000000, "requests": 10, "weight": 5, "share": 0.1, "p99_ms": 30}, {"t": 1700000001, "requests": 20, "errors": 10, "error_ratio": 0.5, "weight": 5, "share": 0.2, "p99_ms": 90}]},
 "cohorts": {
 "new-ranker=on": {"kind": "flag", "flag": "new-ranker", "variant": "on", "points": [{"t": 1700000000, "requests": 25, "weight": 25, "weight_share": 0.25, "share": 0.25}, {"t": 1700000001, "requests": 30, "errors": 3, "error_ratio": 0.1, "weight": 25, "weight_share": 0.25, "share": 0.3}]},
 "new-ranker=off": {"kind": "flag", "flag": "new-ranker", "variant": "off", "control": true, "points": [{"t": 1700000000, "requests": 75, "weight": 75, "weight_share": 0.75, "share": 0.75}, {"t": 1700000001, "requests": 70, "weight": 75, "weight_share": 0.75, "share": 0.7}]}},
 "decisions": [{"time": "2023-11-14T22:13:20Z", "action": "start"}, {"time": "2023-11-14T22:13:21Z", "action": "rollback"}]}`

func TestStatusPageInChromium(t *testing.T) {
	testchrome.Need(t, "the headless status page test")
	if testing.Short() {
		t.Skip("starts a browser")
	}
	h := newHarness(t, Options{Tokens: mustTokens(t, "ci:"+testToken), UIAutotest: true, ListenAddr: "127.0.0.1:9901",
		History: func(context.Context, HistoryQuery) (any, error) { return json.RawMessage(chartHistory), nil }})
	h.fb.mu.Lock()
	h.fb.addRolloutLocked("r-1", "progressing")
	h.fb.mu.Unlock()

	// A plain load renders the rollout, its steps and the cells.
	dom := dumpDOM(t, h.url+"/ui/", 3000)
	if got := attr(t, dom, "rollout-status", "data-status"); got != "progressing" {
		t.Fatalf("#rollout-status data-status %q, want progressing", got)
	}
	for _, want := range []string{`data-cell="stable-a"`, `data-cell="canary-1"`, `data-spark="p99"`,
		`<li data-step="2" class="current" aria-current="step">5 %</li>`, `data-action="start"`, `>node-1<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}
	// The header names the node's HTTP/1.1 server core (node.core).
	if got := attr(t, dom, "node-core", "data-core"); got != "loop" || !strings.Contains(dom, ">core loop<") {
		t.Errorf("#node-core data-core %q, want loop shown as \"core loop\"", got)
	}
	// The charts: the cells' three, then new-ranker's variant cohorts'
	// three, with the decisions marked.
	if got := attr(t, dom, "charts", "data-cells"); got != "canary-1,stable-a" {
		t.Errorf("charts drew cells %q", got)
	}
	if got := attr(t, dom, "charts", "data-cohorts"); got != "new-ranker=off,new-ranker=on" {
		t.Errorf("charts drew cohorts %q", got)
	}
	if got := attr(t, dom, "charts", "data-cohort-points"); got != "4" {
		t.Errorf("cohort charts drawn from %q points, want 4", got)
	}
	if got := attr(t, dom, "charts", "data-markers"); got != "start,rollback" {
		t.Errorf("chart markers %q, want start,rollback", got)
	}
	if n := strings.Count(dom, `data-flag="new-ranker"><div class="uplot`); n != 3 {
		t.Errorf("%d uPlot charts of new-ranker's cohorts, want 3", n)
	}
	// A down cell says so, with how many requests failed over; an up one
	// does not.
	if !regexp.MustCompile(`data-field="name" data-up="false">canary-1<span[^>]*data-field="down"[^>]*> down · 12 failed over`).MatchString(dom) ||
		strings.Contains(dom, `data-up="false">stable-a`) {
		t.Error("the cells' up/down state is not shown")
	}
	// Where another node's view differs, the cell names the nodes that see
	// it down (from /v1/status health_views).
	if !regexp.MustCompile(`data-cell="stable-a"><td data-field="name" data-up="true">stable-a<span[^>]*data-field="down-on"[^>]*> down on node-2</span>`).MatchString(dom) {
		t.Error("stable-a, down in node-2's view only, does not say so")
	}
	if regexp.MustCompile(`<button[^>]*data-action="abort"[^>]*disabled`).MatchString(dom) {
		t.Error("abort button disabled on a progressing rollout")
	}

	// A wrong token: the click reaches the API, which refuses it.
	dom = dumpDOM(t, h.url+"/ui/?autotest=abort&token=wrong", 3000)
	if got := attr(t, dom, "action-result", "data-ok"); got != "false" {
		t.Fatalf("#action-result data-ok %q after a wrong token, want false:\n%s", got, dom)
	}
	if calls := h.fb.callLog(); len(calls) != 0 {
		t.Fatalf("backend called with a wrong token: %q", calls)
	}

	// The right token: abort goes through and the page shows the new state.
	dom = dumpDOM(t, h.url+"/ui/?autotest=abort&token="+testToken, 3000)
	if calls := h.fb.callLog(); len(calls) != 1 || calls[0] != "RolloutAction r-1 abort admin:ci status page" {
		t.Fatalf("backend calls %q, want one abort by admin:ci", calls)
	}
	if got := attr(t, dom, "action-result", "data-ok"); got != "true" {
		t.Errorf("#action-result data-ok %q, want true", got)
	}
	if got := attr(t, dom, "rollout-status", "data-status"); got != "aborted" {
		t.Errorf("#rollout-status data-status %q after abort, want aborted", got)
	}
	if !strings.Contains(dom, `data-action="abort">`) || !strings.Contains(dom, "admin:ci abort") {
		t.Error("audit timeline lacks the abort event")
	}
}
