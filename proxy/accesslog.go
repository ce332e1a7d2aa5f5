package proxy

import (
	"time"

	"github.com/cellgate/cellgate/accesslog"
	"github.com/cellgate/cellgate/tracectx"
)

// accessInfo is what the access log needs beyond what reqState already
// holds, gathered along the request path. It costs nothing when the log
// is off: only plain stores of values the path has at hand.
type accessInfo struct {
	key   []byte // the sticky key (in the request or st.keyBuf); nil: none
	cause cause  // the answer the proxy made itself; causeNone: the upstream's
	proto accesslog.Protocol
	tried string // the endpoint of the last failed attempt
	// bytesOut counts a body streamed from an HTTP/2 upstream (h2Body);
	// grpcStatus is a gRPC call's status when hasGRPC.
	bytesOut   int64
	grpcStatus int
	hasGRPC    bool
	// traceID is the request's trace when [tracing] generate looked at it
	// (kept or started); zero: the log parses the client's traceparent.
	traceID [16]byte
	pinned  bool // a session pin chose the cell
	retried bool // a second attempt went to another endpoint
}

// logAccess hands the finished request to the access log when the log
// takes it (sampled, or an error; not dropped for a full buffer). It runs
// in finish, while the request (st.ctx) is still the server's.
func (st *reqState) logAccess(al *accesslog.Log, status int, end time.Time) {
	isErr := status >= 500 || st.acc.cause != causeNone
	e := al.Begin(isErr, st.p.rand())
	if e == nil {
		return
	}
	ctx := st.ctx
	e.Start, e.Duration = st.start, end.Sub(st.start)
	if !st.ttfb.IsZero() {
		e.TTFB = st.ttfb.Sub(st.start)
	}
	e.Method = append(e.Method, ctx.Method()...)
	e.Host = append(e.Host, ctx.Host()...)
	e.Path = append(e.Path, ctx.Request.Header.RequestURI()...)
	e.Protocol, e.Status, e.Client = st.protocol(), status, st.peer
	if st.acc.hasGRPC {
		e.GRPCStatus = st.acc.grpcStatus
	}
	e.BytesIn = st.bodyRead
	switch {
	case st.streaming:
		e.BytesOut = st.upRead
	case st.acc.bytesOut > 0:
		e.BytesOut = st.acc.bytesOut
	default:
		e.BytesOut = int64(len(ctx.Response.Body()))
	}
	if c := st.cell; c != nil {
		e.Cell, e.Version = c.name, c.version
	}
	e.Endpoint = st.acc.tried
	if st.ep != nil {
		e.Endpoint = st.ep.addr
	}
	e.Pinned, e.Retried = st.acc.pinned, st.acc.retried
	if st.acc.cause != causeNone {
		e.Error = causeNames[st.acc.cause]
	}
	e.StickyKey = append(e.StickyKey, st.acc.key...)
	st.appendTraceIDs(e)
	e.Flags = append(e.Flags, st.FlagVariants()...)
	al.Publish(e)
}

// protocol is the client side's protocol: a WebSocket handshake (set by
// serveTunnel), an HTTP/2 stream (its stand-in connection, h2serve.go) —
// gRPC when its content type says so — or HTTP/1.x.
func (st *reqState) protocol() accesslog.Protocol {
	switch st.ctx.Conn().(type) {
	case *h2StreamConn, *h2StreamTLSConn:
		if isGRPC(&st.ctx.Request.Header) {
			return accesslog.GRPC
		}
		return accesslog.H2
	}
	return st.acc.proto
}

// appendTraceIDs fills the entry's trace id and request id: those the
// request was sent with, generated or the client's own (a valid
// traceparent only).
func (st *reqState) appendTraceIDs(e *accesslog.Entry) {
	h := &st.ctx.Request.Header
	e.TraceID = st.acc.traceID
	if e.TraceID == ([16]byte{}) {
		if tp, ok := tracectx.Parse(peekFold(h, "traceparent", hdrTraceparent)); ok {
			e.TraceID = tp.TraceID
		}
	}
	if st.trace.addReqID {
		e.RequestID = append(e.RequestID, st.trace.reqID[:]...)
	} else {
		e.RequestID = append(e.RequestID, peekFold(h, "X-Request-Id", hdrRequestID)...)
	}
}

// causeNames are the X-Cellgate-Error values as strings, made once.
var causeNames = func() [len(causes)]string {
	var n [len(causes)]string
	for i, c := range causes {
		n[i] = string(c.header)
	}
	return n
}()
