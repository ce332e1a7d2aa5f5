package frontdoor

import (
	"net/http"
	"strconv"
)

// Refusal is the front door's own answer to a request it will not forward.
// Refusals are immutable package values, so handing one out never allocates;
// compare them by pointer or by Status and Code.
type Refusal struct {
	// Status is the HTTP status code sent to the client.
	Status int
	// Code is the value of the X-Cellgate-Error response header, a stable
	// machine-readable class ("bad-request", "uri-too-long", ...). Empty for
	// answers that are not errors (OPTIONS *).
	Code string
	// Reason is a short human explanation, sent as the plain-text body.
	Reason string

	// response is the complete wire response, built once.
	response []byte
}

// Response returns the complete HTTP/1.1 response written to the client. The
// caller must not modify it.
func (r *Refusal) Response() []byte { return r.response }

// Error makes a Refusal usable as an error, e.g. from CheckParsed callers.
func (r *Refusal) Error() string {
	return "frontdoor: " + strconv.Itoa(r.Status) + " " + r.Reason
}

// allowedMethods is what the Allow header advertises on 405 and OPTIONS *:
// the methods the front door forwards without question. Other token methods
// are forwarded too; upstreams answer for them.
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// Error classes sent in X-Cellgate-Error.
const (
	codeBadRequest        = "bad-request"
	codeURITooLong        = "uri-too-long"
	codeHeadersTooLarge   = "headers-too-large"
	codeVersion           = "version-not-supported"
	codeNotImplemented    = "not-implemented"
	codeMethodNotAllowed  = "method-not-allowed"
	headerError           = "X-Cellgate-Error"
	refusalContentType    = "text/plain; charset=utf-8"
	refusalConnectionNote = "close"
)

// newRefusal builds a Refusal and its wire bytes. extra is zero or more
// complete header lines ("Name: value\r\n").
func newRefusal(status int, code, reason, extra string) *Refusal {
	body := reason + "\n"
	b := []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b = append(b, "Content-Type: "+refusalContentType+"\r\n"...)
	b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	b = append(b, "Connection: "+refusalConnectionNote+"\r\n"...)
	if code != "" {
		b = append(b, headerError+": "+code+"\r\n"...)
	}
	b = append(b, extra...)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	return &Refusal{Status: status, Code: code, Reason: reason, response: b}
}

func badRequest(reason string) *Refusal {
	return newRefusal(http.StatusBadRequest, codeBadRequest, reason, "")
}

func tooLarge(reason string) *Refusal {
	return newRefusal(http.StatusRequestHeaderFieldsTooLarge, codeHeadersTooLarge, reason, "")
}

// The refusals, unexported so no caller can alter them. Each names the rule it enforces; README.md maps them to RFC
// sections.
var (
	// Limits.
	refuseRequestLineTooLong = newRefusal(http.StatusRequestURITooLong, codeURITooLong, "request line too long", "")
	refuseHeadersTooLarge    = tooLarge("header section too large")
	refuseTooManyHeaders     = tooLarge("too many header fields")
	refuseTrailersTooLarge   = tooLarge("trailer section too large")
	refuseChunkLineTooLong   = badRequest("chunk size line too long")

	// Lines.
	refuseBareLF        = badRequest("line not terminated by CRLF")
	refuseLeadingBlanks = badRequest("too many empty lines before the request line")

	// Request line.
	refuseRequestLine     = badRequest("malformed request line")
	refuseMethod          = badRequest("method is not a token")
	refuseTarget          = badRequest("request-target is not origin-form or absolute-form")
	refuseTargetBytes     = badRequest("request-target has bytes outside visible ASCII")
	refuseTargetEncoding  = badRequest("request-target has a malformed percent-encoding or a fragment")
	refuseTargetAuthority = badRequest("absolute-form request-target has an invalid authority")
	refuseVersion         = badRequest("malformed HTTP version")
	refuseVersionNumber   = newRefusal(http.StatusHTTPVersionNotSupported, codeVersion, "only HTTP/1.0 and HTTP/1.1 are supported", "")
	refuseH2Preface       = newRefusal(http.StatusHTTPVersionNotSupported, codeVersion, "HTTP/2 prior knowledge is off on this listener (listen.h2c); use TLS with ALPN h2, or HTTP/1.1", "")
	refuseConnect         = newRefusal(http.StatusNotImplemented, codeNotImplemented, "CONNECT is not supported", "")
	refuseTrace           = newRefusal(http.StatusMethodNotAllowed, codeMethodNotAllowed, "TRACE is disabled", "Allow: "+allowedMethods+"\r\n")
	answerOptionsStar     = newRefusal(http.StatusOK, "", "OPTIONS * answered by the front door", "Allow: "+allowedMethods+"\r\n")

	// Field lines.
	refuseObsFold          = badRequest("obsolete line folding or whitespace before a field line")
	refuseSpaceBeforeColon = badRequest("whitespace between field name and colon")
	refuseFieldName        = badRequest("field name is not a token")
	refuseFieldValue       = badRequest("control character in field value")
	refuseUnderscoreFrame  = badRequest("underscore variant of a framing header")

	// Host.
	refuseHostMissing   = badRequest("HTTP/1.1 request without Host")
	refuseHostDuplicate = badRequest("more than one Host")
	refuseHostInvalid   = badRequest("invalid Host")
	refuseHostUserinfo  = badRequest("Host or authority with userinfo")
	refuseHostMismatch  = badRequest("Host differs from the absolute-form authority")

	// Framing.
	refuseContentLength    = badRequest("invalid Content-Length")
	refuseContentLengthDup = badRequest("more than one Content-Length")
	refuseCLAndTE          = badRequest("both Content-Length and Transfer-Encoding")
	refuseTENotChunked     = badRequest("final transfer coding is not chunked")
	refuseTEDuplicate      = badRequest("more than one Transfer-Encoding field or chunked applied twice")
	refuseTEMalformed      = badRequest("malformed Transfer-Encoding")
	refuseTEHTTP10         = badRequest("Transfer-Encoding in an HTTP/1.0 request")
	refuseTEUnsupported    = newRefusal(http.StatusNotImplemented, codeNotImplemented, "transfer codings other than chunked are not supported", "")

	// Chunked body.
	refuseChunkSize     = badRequest("malformed chunk size")
	refuseChunkOverflow = badRequest("chunk size too large")
	refuseChunkExt      = badRequest("malformed chunk extension")
	refuseChunkData     = badRequest("chunk data not followed by CRLF")
	refuseTrailer       = badRequest("framing or routing field in trailer section")
)
