package flags

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/balancer"
)

func ofrepEngine(t testing.TB) *OFREP {
	t.Helper()
	e := NewEngine(testSeed, nil)
	if err := e.SetDefs([]Def{
		{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{50, 50}, Control: "off", Boolean: true},
		{Name: "checkout", Variants: []string{"classic", "express", "oneclick"}, Weights: []float64{60, 30, 10}, Control: "classic"},
		{Name: "done", Variants: []string{"off", "on"}, Weights: []float64{0, 1}, Control: "off", Boolean: true},
	}, nil); err != nil {
		t.Fatal(err)
	}
	return &OFREP{Engine: e}
}

func ctxBody(key string) []byte {
	b, _ := json.Marshal(map[string]any{"context": map[string]any{"targetingKey": key, "plan": "pro"}})
	return b
}

// TestOFREPAgreesWithHeader: for 10 000 keys the OFREP variant of every
// flag is the one the request path writes into X-Cellgate-Flags for the
// same sticky key.
func TestOFREPAgreesWithHeader(t *testing.T) {
	o := ofrepEngine(t)
	s := o.Engine.Load()
	var c Choices
	for k := range 10_000 {
		key := fmt.Sprint("user-", k)
		s.Assign(balancer.HashKey(testSeed, []byte(key)), 0, true, &c)
		header := string(s.AppendHeader(nil, &c))
		status, _, out := o.EvaluateAll(ctxBody(key), nil, nil)
		var all struct{ Flags []evaluation }
		if status != 200 || json.Unmarshal(out, &all) != nil {
			t.Fatalf("bulk: %d %s", status, out)
		}
		var parts []string
		for _, ev := range all.Flags {
			parts = append(parts, ev.Key+"="+ev.Variant)
		}
		if got := strings.Join(parts, ", "); got != header {
			t.Fatalf("key %s: OFREP %q, header %q", key, got, header)
		}
	}
}

func TestOFREPAnswers(t *testing.T) {
	o := ofrepEngine(t)
	srv := httptest.NewServer(o)
	defer srv.Close()
	post := func(path, body string, hdr ...string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	for _, c := range []struct {
		name, path, body string
		status           int
		want             map[string]any
	}{
		{"boolean", "/ofrep/v1/evaluate/flags/new-ranker", string(ctxBody("user-1")), 200, map[string]any{"key": "new-ranker", "reason": "SPLIT"}},
		{"static after all weight on one", "/ofrep/v1/evaluate/flags/done", string(ctxBody("user-1")), 200,
			map[string]any{"key": "done", "reason": "STATIC", "variant": "on", "value": true}},
		{"not found", "/ofrep/v1/evaluate/flags/nope", string(ctxBody("u")), 404, map[string]any{"key": "nope", "errorCode": "FLAG_NOT_FOUND"}},
		{"parse error", "/ofrep/v1/evaluate/flags/done", `{"context":`, 400, map[string]any{"key": "done", "errorCode": "PARSE_ERROR"}},
		{"invalid context", "/ofrep/v1/evaluate/flags/done", `{"context":[1]}`, 400, map[string]any{"errorCode": "INVALID_CONTEXT"}},
		{"targeting key not a string", "/ofrep/v1/evaluate/flags/done", `{"context":{"targetingKey":7}}`, 400, map[string]any{"errorCode": "INVALID_CONTEXT"}},
		{"no targeting key on admin", "/ofrep/v1/evaluate/flags/done", `{"context":{"plan":"pro"}}`, 400, map[string]any{"errorCode": "TARGETING_KEY_MISSING"}},
		{"bulk without key", "/ofrep/v1/evaluate/flags", `{}`, 400, map[string]any{"errorCode": "TARGETING_KEY_MISSING"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, m := post(c.path, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, c.status, m)
			}
			for k, v := range c.want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v (%v)", k, m[k], v, m)
				}
			}
		})
	}
	// A boolean false is a value, not an absent one.
	for k := range 64 {
		if _, m := post("/ofrep/v1/evaluate/flags/new-ranker", string(ctxBody(fmt.Sprint("user-", k)))); m["variant"] == "off" {
			if v, ok := m["value"]; !ok || v != false {
				t.Fatalf("variant off: value %v (present %v)", v, ok)
			}
			break
		}
	}
	// Bulk: ETag, then 304 for it, 200 again once a weight moved.
	resp, _ := post("/ofrep/v1/evaluate/flags", string(ctxBody("user-1")))
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" {
		t.Fatalf("bulk: %d etag %q", resp.StatusCode, etag)
	}
	if resp, _ := post("/ofrep/v1/evaluate/flags", string(ctxBody("user-1")), "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("bulk with If-None-Match of its ETag: %d, want 304", resp.StatusCode)
	}
	if err := o.Engine.SetWeights(map[string]float64{"done=on": 0, "done=off": 1}, false); err != nil {
		t.Fatal(err)
	}
	if resp, _ := post("/ofrep/v1/evaluate/flags", string(ctxBody("user-1")), "If-None-Match", etag); resp.StatusCode != 200 {
		t.Errorf("bulk after a weight change with the old ETag: %d, want 200", resp.StatusCode)
	}
	if resp, _ := http.Get(srv.URL + "/ofrep/v1/evaluate/flags"); resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

// FuzzTargetingKey: any request body parses without panicking, and a
// reported key is never empty.
func FuzzTargetingKey(f *testing.F) {
	for _, s := range []string{"", "{}", `{"context":{"targetingKey":"u"}}`, `{"context":null}`, `{"context":{"targetingKey":null}}`, `{"context":[]}`, `[`, `{"context":{"targetingKey":"\u00e9"}}`} {
		f.Add([]byte(s))
	}
	o := ofrepEngine(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		k, code, _ := TargetingKey(body)
		if code == "" && k != nil && len(k) == 0 {
			t.Fatal("empty key reported as present")
		}
		status, _ := o.Evaluate("checkout", body, []byte("fallback"))
		if (code == "") != (status == 200) {
			t.Fatalf("code %q but status %d", code, status)
		}
	})
}
