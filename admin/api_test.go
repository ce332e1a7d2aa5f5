package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const testToken = "s3cret-token"

// harness is an admin server over a fake backend, on a loopback httptest
// server.
type harness struct {
	t   *testing.T
	fb  *fakeBackend
	srv *Server
	url string
}

// newHarness starts a server; opts.Backend is filled with a fake. With no
// ListenAddr the server is told it listens on a public address, so the
// token rules apply unless a test says otherwise.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	fb := newFakeBackend()
	opts.Backend = fb
	if opts.ListenAddr == "" {
		opts.ListenAddr = "0.0.0.0:9901"
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &harness{t: t, fb: fb, srv: s, url: ts.URL}
}

func mustTokens(t *testing.T, text string) *Tokens {
	t.Helper()
	tk, err := ParseTokens(strings.NewReader(text), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e
}

// do sends a request; token "" sends no Authorization header.
func (h *harness) do(method, path, body, token string, hdr ...string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// TestEndpoints runs every route through its success and error answers.
func TestEndpoints(t *testing.T) {
	type tc struct {
		name       string
		method     string
		path       string
		body       string
		noToken    bool
		setup      func(*fakeBackend)
		wantStatus int
		wantCode   string // error code; "" for a success
		wantBody   string // substring of the body
		wantCall   string // substring of the last backend mutation call
	}
	cases := []tc{
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200, wantBody: `"ok"`},
		{name: "readyz ready", method: "GET", path: "/readyz", wantStatus: 200, wantBody: `"ready"`},
		{name: "readyz not ready", method: "GET", path: "/readyz", setup: func(f *fakeBackend) { f.notReady = true },
			wantStatus: 503, wantCode: CodeNotReady},
		{name: "status", method: "GET", path: "/v1/status", noToken: true, wantStatus: 200, wantBody: `"p99_ms": 25`},
		{name: "status backend error", method: "GET", path: "/v1/status", setup: func(f *fakeBackend) { f.fail["Status"] = errBoom },
			wantStatus: 500, wantCode: CodeInternal, wantBody: "disk on fire"},
		{name: "cells", method: "GET", path: "/v1/cells", noToken: true, wantStatus: 200, wantBody: `"name": "canary-1"`},
		{name: "cells empty is a list", method: "GET", path: "/v1/cells", setup: func(f *fakeBackend) { f.cells = nil },
			wantStatus: 200, wantBody: "[]"},
		{name: "weight", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": 10, "reason": "by hand"}`,
			wantStatus: 200, wantBody: `"weight": 10`, wantCall: "SetWeight canary-1 10 admin:ci by hand"},
		{name: "weight zero", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": 0}`,
			wantStatus: 200, wantCall: "SetWeight canary-1 0 admin:ci"},
		{name: "weight unknown cell", method: "PUT", path: "/v1/cells/nope/weight", body: `{"weight": 1}`,
			wantStatus: 404, wantCode: CodeNotFound},
		{name: "weight missing", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"reason": "x"}`,
			wantStatus: 400, wantCode: CodeInvalid},
		{name: "weight negative", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": -1}`,
			wantStatus: 400, wantCode: CodeInvalid},
		{name: "weight wrong type", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": "10"}`,
			wantStatus: 400, wantCode: CodeBadJSON},
		{name: "weight unknown field", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": 1, "wieght": 2}`,
			wantStatus: 400, wantCode: CodeUnknownField, wantBody: "wieght"},
		{name: "weight trailing json", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": 1} {"weight": 2}`,
			wantStatus: 400, wantCode: CodeTrailingData},
		{name: "weight trailing garbage", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": 1}x`,
			wantStatus: 400, wantCode: CodeTrailingData},
		{name: "weight bad json", method: "PUT", path: "/v1/cells/canary-1/weight", body: `{"weight": `,
			wantStatus: 400, wantCode: CodeBadJSON},
		{name: "weight empty body", method: "PUT", path: "/v1/cells/canary-1/weight",
			wantStatus: 400, wantCode: CodeBadJSON},
		{name: "start rollout", method: "POST", path: "/v1/rollouts", body: `{"name": "ranker-v2", "targets": ["canary-1"], "steps": [1, 100]}`,
			wantStatus: 201, wantBody: `"status": "progressing"`, wantCall: `StartRollout {"name":"ranker-v2","targets":["canary-1"],"steps":[1,100]} admin:ci`},
		{name: "start rollout conflict", method: "POST", path: "/v1/rollouts", body: `{"name": "b"}`,
			setup: func(f *fakeBackend) { f.addRolloutLocked("a-1", "progressing") }, wantStatus: 409, wantCode: CodeConflict},
		{name: "start rollout invalid plan", method: "POST", path: "/v1/rollouts", body: `{"targets": []}`,
			wantStatus: 400, wantCode: CodeInvalid},
		{name: "start rollout plan unknown field", method: "POST", path: "/v1/rollouts", body: `{"name": "x", "stepz": [1]}`,
			wantStatus: 400, wantCode: CodeInvalid, wantBody: "stepz"},
		{name: "start rollout not an object", method: "POST", path: "/v1/rollouts", body: `[1, 2]`,
			wantStatus: 400, wantCode: CodeBadJSON},
		{name: "start rollout trailing", method: "POST", path: "/v1/rollouts", body: `{"name": "x"}{}`,
			wantStatus: 400, wantCode: CodeTrailingData},
		{name: "start rollout mapped error", method: "POST", path: "/v1/rollouts", body: `{"name": "x"}`,
			setup:      func(f *fakeBackend) { f.fail["StartRollout"] = fmt.Errorf("start: %w", errMapped) },
			wantStatus: 409, wantCode: "mapped"},
		{name: "start rollout wrapped typed error", method: "POST", path: "/v1/rollouts", body: `{"name": "x"}`,
			setup: func(f *fakeBackend) {
				f.fail["StartRollout"] = fmt.Errorf("start: %w", Invalid("step 3 is below step 2"))
			},
			wantStatus: 400, wantCode: CodeInvalid, wantBody: "start: step 3 is below step 2"},
		{name: "rollouts", method: "GET", path: "/v1/rollouts", setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") },
			wantStatus: 200, wantBody: `"id": "r-1"`},
		{name: "rollout", method: "GET", path: "/v1/rollouts/r-1", setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") },
			wantStatus: 200, wantBody: `"decisions"`},
		{name: "rollout not found", method: "GET", path: "/v1/rollouts/nope", wantStatus: 404, wantCode: CodeNotFound},
		{name: "unknown action", method: "POST", path: "/v1/rollouts/r-1/explode",
			setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") }, wantStatus: 404, wantCode: CodeNotFound},
		{name: "action not found", method: "POST", path: "/v1/rollouts/nope/abort", wantStatus: 404, wantCode: CodeNotFound},
		{name: "action bad state", method: "POST", path: "/v1/rollouts/r-1/approve",
			setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "progressing") }, wantStatus: 409, wantCode: CodeBadState},
		{name: "action unknown body field", method: "POST", path: "/v1/rollouts/r-1/abort", body: `{"why": "x"}`,
			setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "progressing") }, wantStatus: 400, wantCode: CodeUnknownField},
		{name: "reload", method: "POST", path: "/v1/config/reload", wantStatus: 200, wantBody: "reloaded", wantCall: "Reload admin:ci"},
		{name: "reload invalid file", method: "POST", path: "/v1/config/reload",
			setup:      func(f *fakeBackend) { f.fail["Reload"] = Invalid("cellgate.toml:12: cell.weight: must be ≥ 0") },
			wantStatus: 400, wantCode: CodeInvalid, wantBody: "cellgate.toml:12"},
		{name: "reload body field", method: "POST", path: "/v1/config/reload", body: `{"file": "x"}`,
			wantStatus: 400, wantCode: CodeUnknownField},
		{name: "signal", method: "POST", path: "/v1/signals", body: `{"cell": "canary-1", "name": "drift", "value": 0.25}`,
			wantStatus: 200, wantBody: `"accepted"`, wantCall: "Signal canary-1 drift 0.25 admin:ci"},
		{name: "signal zero value", method: "POST", path: "/v1/signals", body: `{"cell": "canary-1", "name": "drift", "value": 0}`,
			wantStatus: 200, wantCall: "Signal canary-1 drift 0 admin:ci"},
		{name: "signal missing value", method: "POST", path: "/v1/signals", body: `{"cell": "canary-1", "name": "drift"}`,
			wantStatus: 400, wantCode: CodeInvalid},
		{name: "signal missing cell", method: "POST", path: "/v1/signals", body: `{"name": "drift", "value": 1}`,
			wantStatus: 400, wantCode: CodeInvalid},
		{name: "signal unknown cell", method: "POST", path: "/v1/signals", body: `{"cell": "x", "name": "drift", "value": 1}`,
			wantStatus: 404, wantCode: CodeNotFound},
		{name: "audit", method: "GET", path: "/v1/audit", setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") },
			wantStatus: 200, wantBody: `"seq": 2`},
		{name: "audit since", method: "GET", path: "/v1/audit?since=1", setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") },
			wantStatus: 200, wantBody: `"action": "step"`},
		{name: "audit bad since", method: "GET", path: "/v1/audit?since=-1", wantStatus: 400, wantCode: CodeInvalid},
		{name: "unknown path", method: "GET", path: "/v2/nothing", wantStatus: 404, wantCode: CodeNotFound},
	}
	for _, action := range []string{"pause", "resume", "approve", "abort", "promote"} {
		from := map[string]string{"resume": "paused", "approve": "awaiting_approval"}[action]
		if from == "" {
			from = "progressing"
		}
		cases = append(cases, tc{name: "action " + action, method: "POST", path: "/v1/rollouts/r-1/" + action,
			body:  `{"reason": "looks bad"}`,
			setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", from) }, wantStatus: 200, wantBody: `"id": "r-1"`,
			wantCall: "RolloutAction r-1 " + action + " admin:ci looks bad"})
	}
	cases = append(cases, tc{name: "action without body", method: "POST", path: "/v1/rollouts/r-1/abort",
		setup: func(f *fakeBackend) { f.addRolloutLocked("r-1", "paused") }, wantStatus: 200, wantBody: `"aborted"`,
		wantCall: "RolloutAction r-1 abort admin:ci "})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{Tokens: mustTokens(t, "ci:"+testToken), MapError: mapTestError})
			if c.setup != nil {
				h.fb.mu.Lock()
				c.setup(h.fb)
				h.fb.mu.Unlock()
			}
			tok := testToken
			if c.noToken {
				tok = ""
			}
			res := h.do(c.method, c.path, c.body, tok)
			if res.status != c.wantStatus {
				t.Fatalf("status %d, want %d; body %s", res.status, c.wantStatus, res.body)
			}
			if c.wantCode != "" {
				if e := res.errBody(t); e.Code != c.wantCode || e.Error == "" {
					t.Errorf("error body %+v, want code %q and a message", e, c.wantCode)
				}
			}
			if ct := res.header.Get("Content-Type"); c.path != "/metrics" && ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(string(res.body), c.wantBody) {
				t.Errorf("body %s does not contain %q", res.body, c.wantBody)
			}
			if c.wantCall != "" {
				calls := h.fb.callLog()
				if len(calls) == 0 || !strings.HasPrefix(calls[len(calls)-1], c.wantCall) {
					t.Errorf("backend calls %q, want last to start with %q", calls, c.wantCall)
				}
			}
		})
	}
}

// errMapped stands for a backend sentinel that Options.MapError maps.
var errMapped = fmt.Errorf("mapped sentinel")

func mapTestError(err error) *Error {
	if strings.Contains(err.Error(), errMapped.Error()) {
		return &Error{Status: http.StatusConflict, Code: "mapped", Msg: err.Error()}
	}
	return nil
}

func TestStartRolloutAnswer(t *testing.T) {
	h := newHarness(t, Options{Tokens: mustTokens(t, testToken)})
	res := h.do("POST", "/v1/rollouts", "  {\"name\": \"ranker-v2\"}\n", testToken)
	if res.status != http.StatusCreated {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var got startedBody
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatal(err)
	}
	if got != (startedBody{ID: "ranker-v2-1", Status: "progressing"}) {
		t.Errorf("answer %+v", got)
	}
	if loc := res.header.Get("Location"); loc != "/v1/rollouts/ranker-v2-1" {
		t.Errorf("Location %q", loc)
	}
	// A bare token is named "admin".
	if calls := h.fb.callLog(); !strings.HasSuffix(calls[0], " admin:admin") {
		t.Errorf("actor in %q, want admin:admin", calls[0])
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, Options{})
	cases := []struct{ method, path, allow string }{
		{"DELETE", "/v1/status", "GET, HEAD"},
		{"POST", "/v1/cells", "GET, HEAD"},
		{"GET", "/v1/cells/a/weight", "PUT"},
		{"GET", "/v1/signals", "POST"},
		{"PUT", "/v1/rollouts", "GET, HEAD, POST"},
		{"GET", "/v1/rollouts/r/abort", "POST"},
		{"GET", "/v1/config/reload", "POST"},
		{"POST", "/metrics", "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+c.path, func(t *testing.T) {
			res := h.do(c.method, c.path, "", "")
			if res.status != http.StatusMethodNotAllowed {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if got := res.header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
			if e := res.errBody(t); e.Code != CodeMethodNotAllowed {
				t.Errorf("code %q", e.Code)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, Options{Tokens: mustTokens(t, "ci:"+testToken), MaxBodyBytes: 64})
	big := `{"name": "` + strings.Repeat("x", 100) + `"}`
	t.Run("content-length", func(t *testing.T) {
		res := h.do("POST", "/v1/rollouts", big, testToken)
		if res.status != http.StatusRequestEntityTooLarge || res.errBody(t).Code != CodeTooLarge {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// An io.Reader of unknown length is sent chunked: no Content-Length
		// to check up front, so MaxBytesReader has to catch it.
		req, _ := http.NewRequest("PUT", h.url+"/v1/cells/canary-1/weight", io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.ContentLength == 0 || res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("at limit", func(t *testing.T) {
		body := `{"weight": 1, "reason": "` + strings.Repeat("y", 64-27) + `"}`
		if len(body) != 64 {
			t.Fatalf("test body is %d bytes", len(body))
		}
		if res := h.do("PUT", "/v1/cells/canary-1/weight", body, testToken); res.status != http.StatusOK {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	})
	t.Run("default limit is 1 MiB", func(t *testing.T) {
		h := newHarness(t, Options{Tokens: mustTokens(t, testToken)})
		body := `{"name": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
		if res := h.do("POST", "/v1/rollouts", body, testToken); res.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", res.status)
		}
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cellgate_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	h := newHarness(t, Options{Gatherer: reg})
	res := h.do("GET", "/metrics", "", "")
	if res.status != 200 || !strings.Contains(string(res.body), "cellgate_test_total 3") {
		t.Fatalf("status %d body %s", res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	// With no Gatherer the endpoint still answers.
	h = newHarness(t, Options{})
	if res := h.do("GET", "/metrics", "", ""); res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
}

func TestAuth(t *testing.T) {
	const weight = `{"weight": 3}`
	tokens := "# operators\n\nci:" + testToken + "\nalice:alice-token\n"
	cases := []struct {
		name       string
		tokens     string // "" : none configured
		listen     string
		header     string // Authorization value; "" sends none
		wantStatus int
		wantCode   string
		wantActor  string
	}{
		{name: "no header", tokens: tokens, header: "", wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "wrong token", tokens: tokens, header: "Bearer nope", wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "token prefix", tokens: tokens, header: "Bearer " + testToken[:5], wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "basic scheme", tokens: tokens, header: "Basic " + testToken, wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "bearer only", tokens: tokens, header: "Bearer", wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "right token", tokens: tokens, header: "Bearer " + testToken, wantStatus: 200, wantActor: "admin:ci"},
		{name: "second token", tokens: tokens, header: "Bearer alice-token", wantStatus: 200, wantActor: "admin:alice"},
		{name: "scheme case-insensitive", tokens: tokens, header: "bearer alice-token", wantStatus: 200, wantActor: "admin:alice"},
		{name: "token on loopback still required", tokens: tokens, listen: "127.0.0.1:9901", header: "",
			wantStatus: 401, wantCode: CodeUnauthorized},
		{name: "no token configured, loopback", listen: "127.0.0.1:9901", wantStatus: 200, wantActor: "admin:loopback"},
		{name: "no token configured, localhost", listen: "localhost:9901", wantStatus: 200, wantActor: "admin:loopback"},
		{name: "no token configured, ipv6 loopback", listen: "[::1]:9901", header: "Bearer whatever", wantStatus: 200, wantActor: "admin:loopback"},
		{name: "no token configured, public", listen: "0.0.0.0:9901", wantStatus: 403, wantCode: CodeForbidden},
		{name: "no token configured, public with header", listen: "10.1.2.3:9901", header: "Bearer x", wantStatus: 403, wantCode: CodeForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tk *Tokens
			if c.tokens != "" {
				tk = mustTokens(t, c.tokens)
			}
			h := newHarness(t, Options{Tokens: tk, ListenAddr: c.listen})
			var hdr []string
			if c.header != "" {
				hdr = []string{"Authorization", c.header}
			}
			res := h.do("PUT", "/v1/cells/canary-1/weight", weight, "", hdr...)
			if res.status != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.status, c.wantStatus, res.body)
			}
			if c.wantCode != "" {
				if e := res.errBody(t); e.Code != c.wantCode {
					t.Errorf("code %q, want %q", e.Code, c.wantCode)
				}
				if c.wantStatus == 401 && res.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if calls := h.fb.callLog(); len(calls) != 0 {
					t.Errorf("backend was called: %q", calls)
				}
				// Reads stay open whatever the token rules.
				if res := h.do("GET", "/v1/status", "", ""); res.status != 200 {
					t.Errorf("GET /v1/status: %d", res.status)
				}
				return
			}
			if calls := h.fb.callLog(); len(calls) != 1 || !strings.HasSuffix(calls[0], " "+c.wantActor+" ") {
				t.Errorf("calls %q, want actor %s", calls, c.wantActor)
			}
		})
	}
}

func TestForbiddenMessageSaysWhy(t *testing.T) {
	h := newHarness(t, Options{ListenAddr: ":9901"})
	res := h.do("POST", "/v1/config/reload", "", "")
	if e := res.errBody(t); res.status != 403 || !strings.Contains(e.Error, "admin.token_file") {
		t.Fatalf("status %d: %+v", res.status, e)
	}
}

func TestSetTokens(t *testing.T) {
	h := newHarness(t, Options{Tokens: mustTokens(t, "old:old-token")})
	h.srv.SetTokens(mustTokens(t, "new:new-token"))
	if res := h.do("POST", "/v1/config/reload", "", "old-token"); res.status != 401 {
		t.Errorf("old token: %d", res.status)
	}
	if res := h.do("POST", "/v1/config/reload", "", "new-token"); res.status != 200 {
		t.Errorf("new token: %d", res.status)
	}
	h.srv.SetTokens(nil) // public listener, no token: refused
	if res := h.do("POST", "/v1/config/reload", "", "new-token"); res.status != 403 {
		t.Errorf("no tokens: %d", res.status)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	h := newHarness(t, Options{ListenAddr: "127.0.0.1:9901"})
	res := h.do("POST", "/v1/rollouts/r/abort", "", "", "Sec-Fetch-Site", "cross-site")
	if res.status != 403 || res.errBody(t).Code != CodeCrossOrigin {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	res = h.do("POST", "/v1/config/reload", "", "", "Origin", "https://evil.example")
	if res.status != 403 {
		t.Fatalf("Origin mismatch: status %d", res.status)
	}
	// Same-origin browser requests (the status page) pass.
	res = h.do("POST", "/v1/config/reload", "", "", "Sec-Fetch-Site", "same-origin")
	if res.status != 200 {
		t.Fatalf("same-origin: status %d: %s", res.status, res.body)
	}
}

// TestServeLoopbackFromListener checks that Serve takes the loopback rule
// from its listener when Options.ListenAddr is empty, and that Shutdown
// ends Serve with nil.
func TestServeLoopbackFromListener(t *testing.T) {
	fb := newFakeBackend()
	s, err := New(Options{Backend: fb})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	req, _ := http.NewRequest("POST", "http://"+l.Addr().String()+"/v1/config/reload", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("status %d, want 200 on a loopback listener with no token", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestShutdownBeforeServe: a Shutdown that wins the race with Serve still
// stops it (Serve returns nil at once and closes its listener), so whoever
// waits for Serve's result is not left waiting.
func TestShutdownBeforeServe(t *testing.T) {
	s, err := New(Options{Backend: newFakeBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		l.Close()
		t.Fatal("Serve after Shutdown did not return")
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener is still open after Serve returned")
	}
}

func TestNewNeedsBackend(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a Backend succeeded")
	}
}
