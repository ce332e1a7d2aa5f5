package proxy

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cellgate/cellgate/internal/testwait"
	"github.com/cellgate/cellgate/spans"
	"github.com/cellgate/cellgate/tracectx"
)

// otlpReceiver is an in-test OTLP/HTTP trace receiver: it decodes every
// export request (protobuf) and keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func (o *otlpReceiver) got() []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*tracepb.Span(nil), o.spans...)
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			if v := a.Value.GetStringValue(); v != "" {
				return v
			}
			if n := a.Value.GetIntValue(); n != 0 {
				return strconv.FormatInt(n, 10)
			}
		}
	}
	return ""
}

// TestSpansExportedOverOTLP: with an exporter, each sampled request's span
// reaches an OTLP/HTTP receiver with the ids the upstream saw in
// traceparent — a root span for a trace started here, a child of the
// client's span otherwise — and the HTTP and cellgate attributes; an
// unsampled client trace exports nothing.
func TestSpansExportedOverOTLP(t *testing.T) {
	rcv := &otlpReceiver{}
	col := httptest.NewServer(rcv)
	defer col.Close()
	x, err := spans.New(spans.Config{Endpoint: col.URL + "/v1/traces", Node: "n1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up, last := rawHeadUpstream(t)
	opts := testOptions()
	opts.Tracing = Tracing{Generate: true, Sample: 1}
	_, addr := startProxy(t, opts, []CellSpec{{Name: "a", Version: "v7", Weight: 1, Endpoints: []string{up}}}, Hooks{Spans: x})
	c := newClient(t, addr)

	get(t, c, "/started?q=1")
	started, _ := tracectx.Parse([]byte(fieldValues(last(), "traceparent")[0]))
	get(t, c, "/child", "traceparent", validParent, "tracestate", "v=1")
	childHead := last()
	child, _ := tracectx.Parse([]byte(fieldValues(childHead, "traceparent")[0]))
	get(t, c, "/unsampled", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")

	testwait.For(t, 10*time.Second, "2 spans at the receiver", func() bool { return len(rcv.got()) >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x.Close(ctx)
	got := rcv.got()
	if len(got) != 2 {
		t.Fatalf("%d spans exported, want 2 (the unsampled trace exports none)", len(got))
	}
	byPath := map[string]*tracepb.Span{}
	for _, s := range got {
		byPath[spanAttr(s, "url.path")] = s
	}
	root, kid := byPath["/started"], byPath["/child"]
	if root == nil || kid == nil {
		t.Fatalf("spans by path: %v", byPath)
	}
	if string(root.TraceId) != string(started.TraceID[:]) || string(root.SpanId) != string(started.ParentID[:]) || len(root.ParentSpanId) != 0 {
		t.Errorf("root span trace %x span %x parent %x; upstream saw %x/%x", root.TraceId, root.SpanId, root.ParentSpanId, started.TraceID, started.ParentID)
	}
	clientParent, _ := hex.DecodeString("00f067aa0ba902b7")
	if hex.EncodeToString(kid.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" || string(kid.ParentSpanId) != string(clientParent) ||
		string(kid.SpanId) != string(child.ParentID[:]) || string(child.ParentID[:]) == string(clientParent) {
		t.Errorf("child span trace %x span %x parent %x; upstream saw parent-id %x", kid.TraceId, kid.SpanId, kid.ParentSpanId, child.ParentID)
	}
	if v := fieldValues(childHead, "tracestate"); len(v) != 1 || v[0] != "v=1" {
		t.Errorf("tracestate %v beside a continued trace, want the client's", v)
	}
	for key, want := range map[string]string{"http.request.method": "GET", "cellgate.cell": "a", "cellgate.version": "v7", "http.response.status_code": "200", "url.path": "/started"} {
		if got := spanAttr(root, key); got != want {
			t.Errorf("root span %s = %q, want %q", key, got, want)
		}
	}
	if root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span kind %v, want server", root.Kind)
	}
}
