package frontdoor

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Verdict is the outcome of validating a byte stream in one go.
type Verdict struct {
	// Requests is how many complete requests were valid.
	Requests int
	// Accepted is how many leading bytes may be handed to a parser.
	Accepted int
	// Refusal is the answer to the first violation, or nil.
	Refusal *Refusal
	// Partial reports that the stream ends inside a request.
	Partial bool
}

// Validate checks b as the complete byte stream of one connection: the same
// rules as Listen, without a connection. Tests and fuzzing use it; so can
// code that holds a request in memory.
func Validate(b []byte, cfg Config) Verdict {
	var v Validator
	v.init(cfg)
	n, r := v.Feed(b)
	return Verdict{Requests: v.requests, Accepted: n, Refusal: r, Partial: r == nil && !v.Idle()}
}

// CheckParsed applies, to a request fasthttp has already parsed, the rules
// that survive parsing: the refused methods and asterisk-form, underscore
// variants of framing headers, userinfo in Host, and bytes outside visible
// ASCII in the request URI. It is a second line for servers that cannot sit
// behind Listen (a hijacked or in-memory connection); it cannot see framing,
// which fasthttp has already consumed. It returns nil for an acceptable
// request. It does not allocate.
func CheckParsed(h *fasthttp.RequestHeader) *Refusal {
	switch string(h.Method()) {
	case "CONNECT":
		return refuseConnect
	case "TRACE":
		return refuseTrace
	}
	uri := h.RequestURI()
	if len(uri) == 1 && uri[0] == '*' {
		if h.IsOptions() {
			return answerOptionsStar
		}
		return refuseTarget
	}
	for _, c := range uri {
		if c < 0x21 || c > 0x7e {
			return refuseTargetBytes
		}
	}
	if host := h.Host(); bytes.IndexByte(host, '@') >= 0 {
		return refuseHostUserinfo
	} else if !validHost(host) {
		return refuseHostInvalid
	}
	for name := range h.All() {
		if bytes.IndexByte(name, '_') >= 0 &&
			(eqFold(name, "content-length", true) || eqFold(name, "transfer-encoding", true)) {
			return refuseUnderscoreFrame
		}
	}
	return nil
}
