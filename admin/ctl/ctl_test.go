package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cellgate/cellgate/admin"
)

// backend is a small admin.Backend recording every mutation.
type backend struct {
	// mu guards calls and status.
	mu     sync.Mutex
	calls  []string
	status string
}

func (b *backend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *backend) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return ""
	}
	return b.calls[len(b.calls)-1]
}

var testCells = []admin.CellStatus{
	{Name: "stable-a", Version: "v1", Weight: 95, RPS: 40, P50Ms: 3, P99Ms: 18.5, ErrorRatio: 0.001,
		Endpoints: []admin.EndpointStatus{{Addr: "10.0.0.1:80", Up: true}}, BurnRates: []admin.BurnRate{{SLO: "availability", Window: "5m", Rate: 0.5}}},
	{Name: "canary-1", Version: "v2", Weight: 5, Endpoints: []admin.EndpointStatus{{Addr: "10.0.0.2:80"}}, Verdict: "healthy"},
}

func (b *backend) rollout() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return map[string]any{"id": "r-1", "status": b.status, "step": 2, "step_percent": 5, "steps": 5,
		"plan":    map[string]any{"name": "ranker-v2"},
		"weights": map[string]float64{"canary-1": 5, "stable-a": 95},
		"decisions": []map[string]any{{"seq": 1, "time": "2025-01-02T03:04:05Z", "actor": "admin:ci", "rollout": "r-1",
			"action": "start", "status": "progressing", "step": 1}}}
}

func (b *backend) Status(context.Context) (*admin.StatusDoc, error) {
	return &admin.StatusDoc{Node: admin.NodeStatus{Name: "node-1", Version: "test", Ready: true, ConfigGeneration: 3, Core: "loop"},
		Members: []admin.MemberStatus{{Name: "node-1", Addr: "127.0.0.1:7946", State: "alive", Decider: true}},
		Cells:   testCells,
		Rollout: &admin.RolloutStatus{ID: "r-1", Plan: "ranker-v2", Status: "progressing", Step: 2,
			Steps: []float64{1, 5, 25, 50, 100}, Weights: map[string]float64{"canary-1": 5, "stable-a": 95}}}, nil
}
func (b *backend) Cells(context.Context) ([]admin.CellStatus, error) { return testCells, nil }
func (b *backend) SetWeight(_ context.Context, cell string, w float64, actor, reason string) (any, error) {
	b.record("SetWeight %s %v %s %s", cell, w, actor, reason)
	if cell != "canary-1" {
		return nil, admin.NotFound("no cell %q", cell)
	}
	return map[string]any{"name": cell, "weight": w}, nil
}
func (b *backend) StartRollout(_ context.Context, plan json.RawMessage, actor string) (string, string, error) {
	b.record("StartRollout %s %s", plan, actor)
	return "ranker-v2-1", "progressing", nil
}
func (b *backend) Rollout(_ context.Context, id string) (any, error) {
	if id != "r-1" {
		return nil, admin.NotFound("no rollout %q", id)
	}
	return b.rollout(), nil
}
func (b *backend) Rollouts(context.Context) (any, error) { return []any{b.rollout()}, nil }
func (b *backend) RolloutAction(_ context.Context, id, action, actor, reason string) (any, error) {
	b.record("RolloutAction %s %s %s %s", id, action, actor, reason)
	if action == "approve" {
		return nil, admin.BadState("rollout %s is not awaiting approval", id)
	}
	b.mu.Lock()
	b.status = map[string]string{"abort": "aborted", "pause": "paused", "resume": "progressing", "promote": "promoted"}[action]
	b.mu.Unlock()
	return b.rollout(), nil
}
func (b *backend) Audit(_ context.Context, q admin.AuditQuery) (any, error) {
	b.record("Audit %d %d %v", q.Since, q.Limit, q.Tail)
	return b.rollout()["decisions"], nil
}
func (b *backend) Reload(_ context.Context, actor string) (any, error) {
	b.record("Reload %s", actor)
	return map[string]any{"status": "reloaded", "generation": 4}, nil
}
func (b *backend) Signal(_ context.Context, cell, name string, v float64, actor string) error {
	b.record("Signal %s %s %v %s", cell, name, v, actor)
	return nil
}
func (b *backend) Ready() bool { return true }

// setup starts an admin server with token "ci:tok" and returns its URL.
func setup(t *testing.T) (*backend, string) {
	t.Helper()
	b := &backend{status: "progressing"}
	tokens, err := admin.ParseTokens(strings.NewReader("ci:tok\n"), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	s, err := admin.New(admin.Options{Backend: b, Tokens: tokens, ListenAddr: "127.0.0.1:9901"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return b, ts.URL
}

// runCtl runs ctl with CELLGATE_TOKEN=token and stdin.
func runCtl(t *testing.T, token, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(stdin), getenv: func(k string) string {
		if k == tokenEnv {
			return token
		}
		return ""
	}}
	code = run(args, e)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	b, url := setup(t)
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(`{"name": "ranker-v2", "steps": [1, 100]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("# mine\nci:tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		token    string
		stdin    string
		wantCode int
		wantOut  []string // substrings of stdout
		wantErr  string   // substring of stderr
		wantCall string   // last backend call
	}{
		{name: "status table", args: []string{"status"}, wantOut: []string{"node node-1 (test), ready, config generation 3, core loop",
			"MEMBERS", "CELLS", "stable-a", "95.0%", "18.5ms", "availability/5m=0.50", "ROLLOUT", "r-1  plan ranker-v2  progressing  step 2/5 (5 %)"}},
		{name: "status json", args: []string{"-o", "json", "status"}, wantOut: []string{`"name": "node-1"`, `"p99_ms": 18.5`}},
		{name: "cells table", args: []string{"cells"}, wantOut: []string{"NAME", "VERSION", "canary-1", "healthy", "0/1"}},
		{name: "cells json", args: []string{"-o", "json", "cells"}, wantOut: []string{`"name": "canary-1"`}},
		{name: "weight", args: []string{"weight", "canary-1", "10", "-reason", "by hand"}, token: "tok",
			wantOut: []string{"cell canary-1: weight set to 10"}, wantCall: "SetWeight canary-1 10 admin:ci by hand"},
		{name: "weight flag first", args: []string{"weight", "-reason", "x", "canary-1", "2.5"}, token: "tok",
			wantCall: "SetWeight canary-1 2.5 admin:ci x"},
		{name: "weight token file", args: []string{"-token-file", tokenFile, "weight", "canary-1", "1"},
			wantCall: "SetWeight canary-1 1 admin:ci"},
		{name: "weight unknown cell", args: []string{"weight", "nope", "1"}, token: "tok", wantCode: 1,
			wantErr: `error: no cell "nope" (code not_found, HTTP 404)`},
		{name: "weight no token", args: []string{"weight", "canary-1", "1"}, wantCode: 1, wantErr: "code unauthorized, HTTP 401"},
		{name: "weight wrong token", args: []string{"weight", "canary-1", "1"}, token: "bad", wantCode: 1, wantErr: "invalid token"},
		{name: "rollout start file", args: []string{"rollout", "start", planFile}, token: "tok",
			wantOut: []string{"started rollout ranker-v2-1 (progressing)"}, wantCall: "admin:ci"},
		{name: "rollout start stdin json", args: []string{"-o", "json", "rollout", "start", "-"}, token: "tok", stdin: `{"name": "x"}`,
			wantOut: []string{`"id": "ranker-v2-1"`}, wantCall: `StartRollout {"name":"x"} admin:ci`},
		{name: "rollout get", args: []string{"rollout", "get", "r-1"},
			wantOut: []string{"ID       r-1", "PLAN     ranker-v2", "STEP     2/5 (5 %)", "canary-1=5 stable-a=95", "DECISIONS", "admin:ci"}},
		{name: "rollout get missing", args: []string{"rollout", "get", "zz"}, wantCode: 1, wantErr: "not_found"},
		{name: "rollouts", args: []string{"rollouts"}, wantOut: []string{"ID", "r-1", "ranker-v2", "2/5 (5 %)"}},
		{name: "abort", args: []string{"abort", "r-1", "-reason", "bad"}, token: "tok", wantOut: []string{"rollout r-1: aborted"},
			wantCall: "RolloutAction r-1 abort admin:ci bad"},
		{name: "pause", args: []string{"pause", "r-1"}, token: "tok", wantOut: []string{"rollout r-1: paused"}},
		{name: "resume json", args: []string{"-o", "json", "resume", "r-1"}, token: "tok", wantOut: []string{`"status": "progressing"`}},
		{name: "promote", args: []string{"promote", "r-1"}, token: "tok", wantOut: []string{"promoted"}},
		{name: "approve bad state", args: []string{"approve", "r-1"}, token: "tok", wantCode: 1, wantErr: "code bad_state, HTTP 409"},
		{name: "audit", args: []string{"audit", "-since", "7"}, wantOut: []string{"SEQ", "2025-01-02T03:04:05Z", "start"}, wantCall: "Audit 7 1000 false"},
		{name: "audit tail", args: []string{"audit", "-limit", "5"}, wantOut: []string{"SEQ", "start"}, wantCall: "Audit 0 5 true"},
		{name: "reload", args: []string{"reload"}, token: "tok", wantOut: []string{"config reloaded", "generation", "reloaded"},
			wantCall: "Reload admin:ci"},
		{name: "signal", args: []string{"signal", "canary-1", "drift", "-0.25"}, token: "tok",
			wantOut: []string{"signal drift=-0.25 for cell canary-1 accepted"}, wantCall: "Signal canary-1 drift -0.25 admin:ci"},
		{name: "help", args: []string{"help"}, wantOut: []string{"usage: cellgate ctl"}},
		// Usage errors: exit 2, nothing sent.
		{name: "no command", args: nil, wantCode: 2, wantErr: "no command"},
		{name: "unknown command", args: []string{"explode"}, wantCode: 2, wantErr: `unknown command "explode"`},
		{name: "bad output", args: []string{"-o", "yaml", "status"}, wantCode: 2, wantErr: `-o "yaml"`},
		{name: "bad admin url", args: []string{"-admin", "127.0.0.1:9901", "status"}, wantCode: 2, wantErr: "-admin"},
		{name: "weight arity", args: []string{"weight", "canary-1"}, wantCode: 2, wantErr: "CELL WEIGHT"},
		{name: "weight not a number", args: []string{"weight", "canary-1", "ten"}, wantCode: 2, wantErr: `weight "ten"`},
		{name: "weight negative", args: []string{"weight", "canary-1", "-1"}, wantCode: 2, wantErr: `weight "-1"`},
		{name: "signal arity", args: []string{"signal", "a", "b"}, wantCode: 2, wantErr: "CELL NAME VALUE"},
		{name: "rollout no sub", args: []string{"rollout"}, wantCode: 2, wantErr: "rollout start"},
		{name: "rollout bad sub", args: []string{"rollout", "stop", "x"}, wantCode: 2, wantErr: `"stop"`},
		{name: "plan not json", args: []string{"rollout", "start", "-"}, stdin: "name: x", wantCode: 2, wantErr: "not valid JSON"},
		{name: "plan missing file", args: []string{"rollout", "start", filepath.Join(dir, "nope.json")}, wantCode: 2, wantErr: "read plan"},
		{name: "unknown flag", args: []string{"audit", "-until", "3"}, wantCode: 2, wantErr: "-until"},
		{name: "missing token file", args: []string{"-token-file", filepath.Join(dir, "nope"), "reload"}, wantCode: 2, wantErr: "token file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := b.last()
			args := c.args
			if c.name != "bad admin url" {
				args = append([]string{"-admin", url}, args...)
			}
			code, out, errOut := runCtl(t, c.token, c.stdin, args...)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, out, errOut)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, c.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", c.wantErr, errOut)
			}
			if c.wantCall != "" && !strings.Contains(b.last(), c.wantCall) {
				t.Errorf("last backend call %q, want %q", b.last(), c.wantCall)
			}
			if c.wantCode == 2 && b.last() != before {
				t.Errorf("a usage error reached the server: %q", b.last())
			}
		})
	}
}

func TestJSONOutputIsServerJSON(t *testing.T) {
	_, url := setup(t)
	code, out, _ := runCtl(t, "", "", "-admin", url, "-o", "json", "rollouts")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 || v[0]["id"] != "r-1" {
		t.Fatalf("output %s is not the server's list: %v", out, err)
	}
}

func TestUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, _, errOut := runCtl(t, "", "", "-admin", "http://"+addr, "-timeout", "5s", "status")
	if code != 3 || !strings.Contains(errOut, "cannot reach the admin API") {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}

func TestNonAPIErrorAnswer(t *testing.T) {
	ts := httptest.NewServer(nil) // DefaultServeMux: a plain-text 404
	defer ts.Close()
	code, _, errOut := runCtl(t, "", "", "-admin", ts.URL, "cells")
	if code != 1 || !strings.Contains(errOut, "code http_404") {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}

func TestMainUsesProcessEnv(t *testing.T) {
	_, url := setup(t)
	t.Setenv(tokenEnv, "tok")
	var out, errOut bytes.Buffer
	if code := Main([]string{"-admin", url, "reload"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
