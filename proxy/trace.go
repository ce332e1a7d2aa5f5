package proxy

import (
	"math"

	"github.com/valyala/fasthttp"

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
	addParent bool // a trace was started: the client's traceparent and tracestate lines are dropped
	reqID     [32]byte
	addReqID  bool
}

// startTrace applies [tracing] generate to a request: it keeps a valid
// traceparent and an X-Request-Id, and fills st.trace with what is
// missing, for the head (appendTrace) and the access log.
func (st *reqState) startTrace(h *fasthttp.RequestHeader, t *Tracing) *traceHead {
	th := &st.trace
	*th = traceHead{}
	if tp, ok := tracectx.Parse(peekFold(h, "traceparent", hdrTraceparent)); ok {
		st.acc.traceID = tp.TraceID
	} else {
		rnd := st.p.rand
		sampled := t.Sample >= 1 || rnd() < uint64(t.Sample*math.MaxUint64)
		th.parent, th.addParent = tracectx.New(rnd, sampled), true
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
	return th != nil && th.addParent && (equalFold(k, hdrTraceparent) || equalFold(k, hdrTracestate))
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
