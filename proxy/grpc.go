package proxy

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// gRPC over HTTP/2 (grpc/grpc PROTOCOL-HTTP2.md) answers HTTP 200 and puts
// the call's outcome in the grpc-status trailer, so a proxy that judged by
// the HTTP status alone would count every failed call as a success. The
// proxy reads grpc-status (from the trailers, or the headers of a
// trailers-only response), records calls whose code is in
// Options.GRPCErrorCodes as errors, and answers its own failures to gRPC
// clients as trailers-only responses with grpc-status and grpc-message.

// gRPC status codes the proxy names (google.golang.org/grpc/codes).
const (
	grpcOK                = 0
	grpcCancelled         = 1
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcDataLoss          = 15
	grpcMaxCode           = 16 // UNAUTHENTICATED, the highest defined code
)

// DefaultGRPCErrorCodes are the codes that count against a cell's
// availability unless configured otherwise: the ones that say the server
// failed, not that the caller asked for something wrong (NOT_FOUND,
// INVALID_ARGUMENT) or gave up (CANCELLED).
var DefaultGRPCErrorCodes = []int{grpcUnknown, grpcDeadlineExceeded, grpcInternal, grpcUnavailable, grpcDataLoss}

// grpcMask is a set of gRPC codes, bit c for code c.
type grpcMask uint32

func newGRPCMask(codes []int) grpcMask {
	var m grpcMask
	for _, c := range codes {
		if c >= 0 && c <= grpcMaxCode {
			m |= 1 << uint(c)
		}
	}
	return m
}

func (m grpcMask) has(code int) bool {
	return code >= 0 && code <= grpcMaxCode && m&(1<<uint(code)) != 0
}

var (
	ctGRPC         = []byte("application/grpc")
	hdrGRPCStatus  = []byte("grpc-status")
	hdrGRPCMsg     = []byte("grpc-message")
	hdrGRPCTimeout = []byte("grpc-timeout")
)

// isGRPC reports whether a request is a gRPC call: Content-Type
// "application/grpc" or "application/grpc+<codec>" (not gRPC-Web, which
// is plain HTTP to a proxy).
func isGRPC(h *fasthttp.RequestHeader) bool {
	ct := h.ContentType()
	if !bytes.HasPrefix(ct, ctGRPC) {
		return false
	}
	rest := ct[len(ctGRPC):]
	return len(rest) == 0 || rest[0] == '+' || rest[0] == ';'
}

// parseGRPCStatus parses a grpc-status value: a decimal code. ok is false
// for anything else, which the proxy treats as a failed call.
func parseGRPCStatus(v string) (code int, ok bool) {
	if len(v) == 0 || len(v) > 3 {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || v[0] == '+' || v[0] == '-' {
		return 0, false
	}
	return n, true
}

// parseGRPCTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n). ok is false for anything else, which leaves the call
// unbounded by it (the upstream judges it too).
func parseGRPCTimeout(v []byte) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > int64(math.MaxInt64/unit) {
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

// grpcCauses are the gRPC codes and messages for the proxy's own failures.
var grpcCauses = [...]struct {
	code int
	msg  string
}{
	causeRefused:        {grpcUnavailable, "cellgate: upstream refused the connection"},
	causeReset:          {grpcUnavailable, "cellgate: upstream connection failed"},
	causeTimeout:        {grpcDeadlineExceeded, "cellgate: upstream did not answer in time"},
	causeConnectTimeout: {grpcUnavailable, "cellgate: upstream connect timed out"},
	causeBusy:           {grpcResourceExhausted, "cellgate: upstream connection limit reached"},
	causeNoEndpoint:     {grpcUnavailable, "cellgate: no healthy endpoint in cell"},
	causeNoCell:         {grpcUnavailable, "cellgate: no cell has weight"},
	causeTruncated:      {grpcUnavailable, "cellgate: upstream response incomplete"},
	causeTooLarge:       {grpcResourceExhausted, "cellgate: request body too large"},
	causeClientTimeout:  {grpcDeadlineExceeded, "cellgate: request body stalled"},
	causeClientBody:     {grpcInternal, "cellgate: request body incomplete"},
	causeNotGRPCCell:    {grpcUnimplemented, "cellgate: the cell speaks HTTP/1.1; gRPC needs protocol h2c or h2"},
	causeClientGone:     {grpcCancelled, "cellgate: the call was cancelled"},
}

// writeGRPCError answers a gRPC call that the proxy failed as a
// trailers-only response: HTTP 200, grpc-status and grpc-message in the
// header block, X-Cellgate-Error naming the cause, no body.
func writeGRPCError(ctx *fasthttp.RequestCtx, c cause) {
	g := &grpcCauses[c]
	resp := &ctx.Response
	resp.Reset()
	resp.Header.DisableNormalizing()
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentTypeBytes(ctGRPC)
	resp.Header.SetBytesK(hdrGRPCStatus, strconv.Itoa(g.code))
	resp.Header.SetBytesK(hdrGRPCMsg, g.msg)
	resp.Header.SetBytesKV(hdrCellgateError, causes[c].header)
}
