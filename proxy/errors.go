package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"
)

// cause is why the proxy answered for the upstream. Every upstream failure
// goes through classify and then writeError, the one place that maps a
// failure to a status, an X-Cellgate-Error value and a body.
type cause uint8

const (
	causeNone           cause = iota
	causeRefused              // dial refused or failed: nothing was sent
	causeReset                // connection reset/closed or a malformed response
	causeTimeout              // upstream did not answer in time
	causeConnectTimeout       // dial timed out: nothing was sent
	causeBusy                 // the endpoint's connection cap is reached
	causeNoEndpoint           // every endpoint of the cell is ejected
	causeNoCell               // no cell has weight
	causeTruncated            // the upstream body ended early or was malformed (logged and recorded; the client connection is aborted)
	causeTooLarge             // the client's body passed max_request_body
	causeClientTimeout        // the client's body stalled past the progress timeout
	causeClientBody           // the client's body ended early or was malformed
	causeNotGRPCCell          // a gRPC call was routed to an HTTP/1.1 cell (grpc.go)
	causeClientGone           // an HTTP/2 client reset its stream before the upstream answered
)

// causeInfo is the fixed answer for a cause, kept as bytes so writing an
// error response does not allocate.
type causeInfo struct {
	status int
	header []byte
	body   []byte
	// client marks the client's own failures: the connection closes after
	// the answer and the cell's SLIs do not count them as errors.
	client bool
}

var causes = [...]causeInfo{
	causeRefused:        {fasthttp.StatusBadGateway, []byte("upstream-refused"), []byte("502 bad gateway: upstream refused the connection\n"), false},
	causeReset:          {fasthttp.StatusBadGateway, []byte("upstream-reset"), []byte("502 bad gateway: upstream connection failed\n"), false},
	causeTimeout:        {fasthttp.StatusGatewayTimeout, []byte("upstream-timeout"), []byte("504 gateway timeout: upstream did not answer in time\n"), false},
	causeConnectTimeout: {fasthttp.StatusGatewayTimeout, []byte("upstream-connect-timeout"), []byte("504 gateway timeout: upstream connect timed out\n"), false},
	causeBusy:           {fasthttp.StatusServiceUnavailable, []byte("upstream-busy"), []byte("503 service unavailable: upstream connection limit reached\n"), false},
	causeNoEndpoint:     {fasthttp.StatusServiceUnavailable, []byte("no-healthy-endpoint"), []byte("503 service unavailable: no healthy endpoint in cell\n"), false},
	causeNoCell:         {fasthttp.StatusServiceUnavailable, []byte("no-cell"), []byte("503 service unavailable: no cell has weight\n"), false},
	causeTruncated:      {fasthttp.StatusBadGateway, []byte("upstream-truncated"), []byte("502 bad gateway: upstream response incomplete\n"), false},
	causeTooLarge:       {fasthttp.StatusRequestEntityTooLarge, []byte("body-too-large"), []byte("413 request body too large\n"), true},
	causeClientTimeout:  {fasthttp.StatusRequestTimeout, []byte("client-timeout"), []byte("408 request timeout: request body stalled\n"), true},
	causeClientBody:     {fasthttp.StatusBadRequest, []byte("bad-request-body"), []byte("400 bad request: request body incomplete\n"), true},
	causeNotGRPCCell:    {fasthttp.StatusBadGateway, []byte("upstream-not-h2"), []byte("502 bad gateway: gRPC needs an HTTP/2 cell\n"), false},
	causeClientGone:     {499, []byte("client-closed"), []byte("499 client closed request\n"), true},
}

var (
	hdrCellgateError = []byte("X-Cellgate-Error")
	ctTextPlain      = []byte("text/plain; charset=utf-8")
)

// classify maps an upstream error to its cause. sent says whether any byte
// of the request may have reached the upstream: a failure before that is a
// connect failure (refused or connect timeout).
func classify(err error, sent bool) cause {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, errH2ConnLimit):
		return causeBusy
	case isTimeout(err):
		if !sent {
			return causeConnectTimeout
		}
		return causeTimeout
	case !sent:
		return causeRefused
	case errors.Is(err, syscall.ECONNREFUSED):
		return causeRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return causeReset
	}
	return causeReset
}

// isTimeout reports a deadline or dial timeout.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeError replaces whatever response was started with the cause's
// status, X-Cellgate-Error header and short plain-text body.
func writeError(ctx *fasthttp.RequestCtx, c cause) {
	if isGRPC(&ctx.Request.Header) {
		writeGRPCError(ctx, c) // a gRPC client reads grpc-status, not the HTTP status
		return
	}
	info := &causes[c]
	resp := &ctx.Response
	resp.Reset()
	resp.Header.DisableNormalizing()
	resp.SetStatusCode(info.status)
	resp.Header.SetContentTypeBytes(ctTextPlain)
	resp.Header.SetBytesKV(hdrCellgateError, info.header)
	resp.SetBodyRaw(info.body)
}
