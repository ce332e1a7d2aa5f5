package proxy

import (
	"math"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/spans"
	"github.com/cellgate/cellgate/tracectx"
)

// Tracing is what the proxy does with trace context ([tracing]).
type Tracing struct {
	// Generate starts a trace for a request without a valid traceparent
	// (the client's invalid traceparent and any tracestate are dropped, as
	// W3C Trace Context §3.2 and §3.3 ask of a restarted trace), and adds
	// an X-Request-Id to one without it. A valid traceparent, a tracestate
	// beside it and an X-Request-Id always pass through untouched. False:
	// nothing is added or removed (faithful proxying).
	Generate bool
	// Sample is the share of traces started here that carry the sampled
	// flag, asking the next hops to record them; 0 to 1.
	Sample float64
}

var (
	hdrTraceparent = []byte("traceparent")
	hdrTracestate  = []byte("tracestate")
	hdrRequestID   = []byte("X-Request-Id")
)

// traceHead is what a request adds to its upstream head: a traceparent
// started here, and a generated X-Request-Id.
type traceHead struct {
	parent    tracectx.TraceParent
	addParent bool // parent replaces the client's traceparent line (a started trace, or an exported span's child)
	dropState bool // a trace was started: the client's tracestate goes too
	reqID     [32]byte
	addReqID  bool
	// export: this request's span goes to the span exporter (sampled);
	// clientParent is the client's span (zero for a trace started here).
	export       bool
	clientParent [8]byte
}

// startTrace applies [tracing] generate to a request: it keeps a valid
// traceparent and an X-Request-Id, and fills st.trace with what is
// missing, for the head (appendTrace) and the access log.
func (st *reqState) startTrace(h *fasthttp.RequestHeader, t *Tracing) *traceHead {
	th := &st.trace
	*th = traceHead{}
	exporting := st.p.hooks.Spans != nil
	if tp, ok := tracectx.Parse(peekFold(h, "traceparent", hdrTraceparent)); ok {
		st.acc.traceID = tp.TraceID
		if exporting {
			// The proxy's span is a child of the client's, and the
			// upstream's spans children of the proxy's: the parent-id sent
			// on is the proxy's span id (W3C Trace Context §3.2.2.4).
			th.clientParent = tp.ParentID
			th.parent = tracectx.New(st.p.rand, tp.Sampled())
			th.parent.TraceID, th.parent.Flags = tp.TraceID, tp.Flags
			th.addParent, th.export = true, tp.Sampled()
		}
	} else {
		rnd := st.p.rand
		sampled := t.Sample >= 1 || rnd() < uint64(t.Sample*math.MaxUint64)
		th.parent, th.addParent, th.dropState = tracectx.New(rnd, sampled), true, true
		th.export = exporting && sampled
		st.acc.traceID = th.parent.TraceID
	}
	if len(peekFold(h, "X-Request-Id", hdrRequestID)) == 0 {
		appendHex(th.reqID[:0], st.p.rand())
		appendHex(th.reqID[16:16], st.p.rand())
		th.addReqID = true
	}
	return th
}

// dropsField reports whether the client's field k stays out of the
// upstream head: a trace started here replaces its trace context.
func (th *traceHead) dropsField(k []byte) bool {
	return th != nil && (th.addParent && equalFold(k, hdrTraceparent) || th.dropState && equalFold(k, hdrTracestate))
}

// appendTrace appends the fields a started trace adds.
func (th *traceHead) appendTrace(dst []byte) []byte {
	if th == nil {
		return dst
	}
	if th.addParent {
		dst = append(dst, "traceparent: "...)
		dst = th.parent.AppendTo(dst)
		dst = append(dst, crlf...)
	}
	if th.addReqID {
		dst = append(dst, "X-Request-Id: "...)
		dst = append(dst, th.reqID[:]...)
		dst = append(dst, crlf...)
	}
	return dst
}

// exportSpan hands the finished request's span to the span exporter (it
// runs in finish, while the request is still the server's).
func (st *reqState) exportSpan(x *spans.Exporter, status int, end time.Time) {
	r := x.Begin()
	if r == nil {
		return
	}
	ctx, th := st.ctx, &st.trace
	r.TraceID, r.SpanID, r.ParentID = th.parent.TraceID, th.parent.ParentID, th.clientParent
	r.Start, r.End, r.Status, r.Client = st.start, end, status, st.peer
	r.Method = append(r.Method, ctx.Method()...)
	r.Host = append(r.Host, ctx.Host()...)
	r.Path = append(r.Path, ctx.Path()...)
	r.Protocol = "1.1"
	if st.protocol() == accesslog.H2 || st.protocol() == accesslog.GRPC {
		r.Protocol = "2"
	}
	if c := st.cell; c != nil {
		r.Cell, r.Version = c.name, c.version
	}
	if st.ep != nil {
		r.Endpoint = st.ep.addr
	}
	if st.acc.cause != causeNone {
		r.Error = causeNames[st.acc.cause]
	}
	x.Publish(r)
}
