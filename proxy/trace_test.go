package proxy

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/tracectx"
)

// rawHeadUpstream records the raw header block of the last request.
func rawHeadUpstream(t *testing.T) (addr string, last func() string) {
	var mu sync.Mutex
	var head string
	addr = startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		head = string(ctx.Request.Header.RawHeaders())
		mu.Unlock()
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return head }
}

// fieldValues returns the values of every line of head named name
// (case-insensitive).
func fieldValues(head, name string) []string {
	var out []string
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

const validParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestTraceContext sends requests with net/http through a proxy with
// tracing off and on, and reads the trace fields the upstream received.
func TestTraceContext(t *testing.T) {
	up, last := rawHeadUpstream(t)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	cases := []struct {
		name     string
		generate bool
		send     map[string]string
		check    func(t *testing.T, head string)
	}{
		{"off: nothing added", false, nil, func(t *testing.T, head string) {
			if v := fieldValues(head, "traceparent"); len(v) != 0 {
				t.Errorf("traceparent %v added with tracing off", v)
			}
			if v := fieldValues(head, "X-Request-Id"); len(v) != 0 {
				t.Errorf("X-Request-Id %v added with tracing off", v)
			}
		}},
		{"off: an invalid traceparent passes untouched", false, map[string]string{"traceparent": "garbage", "tracestate": "a=b"}, func(t *testing.T, head string) {
			if v := fieldValues(head, "traceparent"); len(v) != 1 || v[0] != "garbage" {
				t.Errorf("traceparent %v, want garbage as sent", v)
			}
			if v := fieldValues(head, "tracestate"); len(v) != 1 || v[0] != "a=b" {
				t.Errorf("tracestate %v, want a=b as sent", v)
			}
		}},
		{"on: a valid context is kept", true, map[string]string{"traceparent": validParent, "tracestate": "vendor=x", "X-Request-Id": "req-1"}, func(t *testing.T, head string) {
			if v := fieldValues(head, "traceparent"); len(v) != 1 || v[0] != validParent {
				t.Errorf("traceparent %v, want the client's", v)
			}
			if v := fieldValues(head, "tracestate"); len(v) != 1 || v[0] != "vendor=x" {
				t.Errorf("tracestate %v, want the client's", v)
			}
			if v := fieldValues(head, "X-Request-Id"); len(v) != 1 || v[0] != "req-1" {
				t.Errorf("X-Request-Id %v, want the client's", v)
			}
		}},
		{"on: started when absent", true, nil, func(t *testing.T, head string) {
			v := fieldValues(head, "traceparent")
			if len(v) != 1 {
				t.Fatalf("traceparent %v, want one started", v)
			}
			if tp, ok := tracectx.Parse([]byte(v[0])); !ok || !tp.Sampled() {
				t.Errorf("started traceparent %q: valid %v, want valid and sampled (sample 1)", v[0], ok)
			}
			if id := fieldValues(head, "X-Request-Id"); len(id) != 1 || !hex32.MatchString(id[0]) {
				t.Errorf("X-Request-Id %v, want one of 32 hex digits", id)
			}
		}},
		{"on: an invalid context is replaced", true, map[string]string{"traceparent": strings.ToUpper(validParent), "tracestate": "vendor=x"}, func(t *testing.T, head string) {
			v := fieldValues(head, "traceparent")
			if len(v) != 1 || v[0] == strings.ToUpper(validParent) {
				t.Fatalf("traceparent %v, want one started in place of the invalid one", v)
			}
			if _, ok := tracectx.Parse([]byte(v[0])); !ok {
				t.Errorf("started traceparent %q is invalid", v[0])
			}
			if s := fieldValues(head, "tracestate"); len(s) != 0 {
				t.Errorf("tracestate %v kept beside a restarted trace", s)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions()
			opts.Tracing = Tracing{Generate: c.generate, Sample: 1}
			_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}}}, Hooks{})
			req, _ := http.NewRequest("GET", "http://"+addr+"/t", nil)
			for k, v := range c.send {
				req.Header[k] = []string{v}
			}
			resp, err := httpClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.check(t, last())
		})
	}
}

// TestTraceIDsInAccessLog: the access line names the trace and request ids
// the upstream received, started here or the client's.
func TestTraceIDsInAccessLog(t *testing.T) {
	up, last := rawHeadUpstream(t)
	path := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.New(accesslog.Config{Path: path, Sample: 1}, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	opts := testOptions()
	opts.Tracing = Tracing{Generate: true, Sample: 0}
	_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Version: "v1", Weight: 1, Endpoints: []string{up}}}, Hooks{AccessLog: al})
	c := newClient(t, addr)
	get(t, c, "/started")
	head := last()
	testwait.For(t, 10*time.Second, "a line", func() bool { return al.Written() == 1 })
	get(t, c, "/kept", "traceparent", validParent, "X-Request-Id", "abc")
	testwait.For(t, 10*time.Second, "two lines", func() bool { return al.Written() == 2 })

	tp, ok := tracectx.Parse([]byte(fieldValues(head, "traceparent")[0]))
	if !ok || tp.Sampled() {
		t.Fatalf("started traceparent in %q: valid %v, want valid and not sampled (sample 0)", head, ok)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var started, kept map[string]any
	json.Unmarshal([]byte(lines[0]), &started)
	json.Unmarshal([]byte(lines[1]), &kept)
	if started["trace_id"] != hex.EncodeToString(tp.TraceID[:]) || started["request_id"] != fieldValues(head, "X-Request-Id")[0] {
		t.Errorf("line %v does not name the ids sent upstream (%q)", started, head)
	}
	if kept["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || kept["request_id"] != "abc" {
		t.Errorf("line %v does not name the client's ids", kept)
	}
}
