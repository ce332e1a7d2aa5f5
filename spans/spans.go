// Package spans exports one OpenTelemetry span per sampled proxied request
// over OTLP/HTTP ([tracing] otlp_endpoint), off the request path.
//
// As in package accesslog, the request path only fills a pooled Record and
// hands it over (a full pool drops the span and counts it); a goroutine
// turns records into OpenTelemetry SDK spans, with the ids the proxy put in
// the traceparent it sent upstream, and exports them in batches with the
// SDK's OTLP/HTTP exporter. Attributes follow the HTTP semantic
// conventions, plus cellgate.cell, cellgate.version and, for each flag,
// feature_flag.key and feature_flag.result.variant.
package spans

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Record is one request's span, filled by the data plane. Byte slices are
// the record's own buffers (append to [:0]); strings must be immutable.
type Record struct {
	TraceID  [16]byte
	SpanID   [8]byte // the proxy's span: the parent-id it sent upstream
	ParentID [8]byte // the client's span; zero: a trace started here
	Start    time.Time
	End      time.Time
	Method   []byte
	Host     []byte
	Path     []byte // without its query
	Status   int
	Client   netip.Addr
	Cell     string
	Version  string
	Endpoint string
	Error    string // X-Cellgate-Error cause, if the proxy answered itself
	Flags    []byte // flag=variant pairs as sent upstream (X-Cellgate-Flags)
	Protocol string // "1.1", "2"
}

// Config says where spans go.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP traces URL
	// ("http://collector:4318/v1/traces"); a bare host:port means
	// http://host:port/v1/traces.
	Endpoint string
	// Node names the service instance (service.instance.id).
	Node string
}

// batch is how many spans one export carries at most, and every is how
// long spans collect before an export.
const (
	batch  = 512
	every  = 200 * time.Millisecond
	buffer = 4096
)

// Exporter collects records and exports them. Build it with New, stop it
// with Close.
type Exporter struct {
	free, full chan *Record
	dropped    atomic.Uint64
	exported   atomic.Uint64
	exp        sdktrace.SpanExporter
	res        *resource.Resource
	log        *slog.Logger
	stop       chan struct{}
	done       chan struct{}
	once       sync.Once
}

// New builds an exporter to cfg.Endpoint.
func New(cfg Config, logger *slog.Logger) (*Exporter, error) {
	u, err := endpointURL(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u)}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	return newExporter(exp, cfg.Node, logger), nil
}

// newExporter wraps any span exporter (tests use an in-memory one).
func newExporter(exp sdktrace.SpanExporter, node string, logger *slog.Logger) *Exporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	x := &Exporter{
		free: make(chan *Record, buffer), full: make(chan *Record, buffer),
		exp: exp, log: logger, stop: make(chan struct{}), done: make(chan struct{}),
		res: resource.NewSchemaless(attribute.String("service.name", "cellgate"), attribute.String("service.instance.id", node)),
	}
	for range buffer {
		x.free <- &Record{}
	}
	go x.run()
	return x
}

// endpointURL accepts a URL or host:port.
func endpointURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s + "/v1/traces"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("otlp endpoint %q: want http(s)://host:port/v1/traces or host:port", s)
	}
	return u.String(), nil
}

// CheckEndpoint reports whether s is a usable otlp_endpoint.
func CheckEndpoint(s string) error {
	_, err := endpointURL(s)
	return err
}

// Begin returns an empty record for a sampled request, or nil (counted as
// dropped) when every record is in flight. It never blocks.
func (x *Exporter) Begin() *Record {
	select {
	case r := <-x.free:
		return r
	default:
		x.dropped.Add(1)
		return nil
	}
}

// Publish hands a filled record to the exporter; it never blocks.
func (x *Exporter) Publish(r *Record) { x.full <- r }

// Dropped and Exported count spans.
func (x *Exporter) Dropped() uint64  { return x.dropped.Load() }
func (x *Exporter) Exported() uint64 { return x.exported.Load() }

// run collects records for every period and exports them.
func (x *Exporter) run() {
	defer close(x.done)
	t := time.NewTicker(every)
	defer t.Stop()
	stubs := make(tracetest.SpanStubs, 0, batch)
	for {
		select {
		case <-x.stop:
			x.export(x.take(stubs[:0]))
			return
		case <-t.C:
		}
		x.export(x.take(stubs[:0]))
	}
}

// take turns up to batch queued records into span stubs.
func (x *Exporter) take(stubs tracetest.SpanStubs) tracetest.SpanStubs {
	for len(stubs) < batch {
		select {
		case r := <-x.full:
			stubs = append(stubs, x.stub(r))
			*r = Record{Method: r.Method[:0], Host: r.Host[:0], Path: r.Path[:0], Flags: r.Flags[:0]}
			x.free <- r
		default:
			return stubs
		}
	}
	return stubs
}

func (x *Exporter) export(stubs tracetest.SpanStubs) {
	if len(stubs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := x.exp.ExportSpans(ctx, stubs.Snapshots()); err != nil {
		x.log.Warn("spans not exported", "spans", len(stubs), "err", err)
		return
	}
	x.exported.Add(uint64(len(stubs)))
}

// stub turns a record into a server span.
func (x *Exporter) stub(r *Record) tracetest.SpanStub {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: r.TraceID, SpanID: r.SpanID, TraceFlags: trace.FlagsSampled})
	var parent trace.SpanContext
	if r.ParentID != ([8]byte{}) {
		parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: r.TraceID, SpanID: r.ParentID, TraceFlags: trace.FlagsSampled, Remote: true})
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", string(r.Method)),
		attribute.String("url.path", string(r.Path)),
		attribute.String("server.address", string(r.Host)),
		attribute.Int("http.response.status_code", r.Status),
		attribute.String("network.protocol.version", r.Protocol),
		attribute.String("cellgate.cell", r.Cell),
		attribute.String("cellgate.version", r.Version),
	}
	if r.Client.IsValid() {
		attrs = append(attrs, attribute.String("client.address", r.Client.String()))
	}
	if r.Endpoint != "" {
		attrs = append(attrs, attribute.String("cellgate.endpoint", r.Endpoint))
	}
	if r.Error != "" {
		attrs = append(attrs, attribute.String("error.type", r.Error))
	}
	var events []sdktrace.Event
	for _, kv := range strings.Split(string(r.Flags), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k != "" {
			events = append(events, sdktrace.Event{Name: "feature_flag.evaluation", Time: r.Start, Attributes: []attribute.KeyValue{
				attribute.String("feature_flag.key", k), attribute.String("feature_flag.result.variant", strings.Trim(v, `"`)),
			}})
		}
	}
	st := sdktrace.Status{Code: codes.Unset}
	if r.Status >= 500 {
		st = sdktrace.Status{Code: codes.Error, Description: r.Error}
	}
	return tracetest.SpanStub{
		Name: string(r.Method), SpanContext: sc, Parent: parent, SpanKind: trace.SpanKindServer,
		StartTime: r.Start, EndTime: r.End, Attributes: attrs, Events: events, Status: st,
		Resource: x.res, InstrumentationScope: instrumentation.Scope{Name: "github.com/cellgate/cellgate/proxy"},
	}
}

// Close exports what is queued and shuts the exporter down.
func (x *Exporter) Close(ctx context.Context) error {
	x.once.Do(func() { close(x.stop) })
	select {
	case <-x.done:
	case <-ctx.Done():
	}
	return x.exp.Shutdown(ctx)
}
