package bench

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Error causes reported in Result.ErrorsByCause. Status and cellgate causes
// are built from these prefixes: "status 503", "cellgate: no_healthy_endpoint".
const (
	CauseRefused        = "connect refused"
	CauseConnectTimeout = "connect timeout"
	CauseTimeout        = "timeout"
	CauseReset          = "reset"
	CauseClosed         = "closed before response"
	CauseOther          = "other"
	causeStatusPrefix   = "status "
	causeCellgatePrefix = "cellgate: "
)

// transportCause maps a client error to one of the fixed causes. It returns
// constants only, so classifying does not allocate.
func transportCause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return CauseConnectTimeout
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, syscall.ETIMEDOUT):
		return CauseTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return CauseReset
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, errConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return CauseClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CauseTimeout
	}
	return CauseOther
}

// statusCause names an error status for the cause table.
func statusCause(code int) string {
	return causeStatusPrefix + strconv.Itoa(code)
}

// isErrorStatus reports whether a response status counts as an error: the
// 5xx class, which a proxy returns for upstream failures (RFC 9110 §15.6).
func isErrorStatus(code int) bool { return code >= 500 && code <= 599 }
