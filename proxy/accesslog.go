package proxy

import (
	"time"

	"github.com/cellgate/cellgate/accesslog"
)

// accessInfo is what the access log needs beyond what reqState already
// holds, gathered along the request path. It costs nothing when the log
// is off: only plain stores of values the path has at hand.
type accessInfo struct {
	key     []byte // the sticky key (in the request or st.keyBuf); nil: none
	cause   cause  // the answer the proxy made itself; causeNone: the upstream's
	proto   accesslog.Protocol
	tried   string // the endpoint of the last failed attempt
	pinned  bool   // a session pin chose the cell
	retried bool   // a second attempt went to another endpoint
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
	e.Protocol, e.Status, e.Client = st.acc.proto, status, st.peer
	e.BytesIn = st.bodyRead
	if st.streaming {
		e.BytesOut = st.upRead
	} else {
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
	al.Publish(e)
}

// causeNames are the X-Cellgate-Error values as strings, made once.
var causeNames = func() [len(causes)]string {
	var n [len(causes)]string
	for i, c := range causes {
		n[i] = string(c.header)
	}
	return n
}()
