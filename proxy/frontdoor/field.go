package frontdoor

import (
	"bytes"

	"github.com/cellgate/cellgate/internal/ows"
)

// headerLine checks one field line of the header section (RFC 9112 §5), CRLF
// removed; the empty line ends the section.
func (v *Validator) headerLine(line []byte) *Refusal {
	if len(line) == 0 {
		return v.endHead()
	}
	m := &v.msg
	m.fieldBytes += len(line) + 2
	m.fieldCount++
	if m.fieldBytes > v.cfg.MaxHeaderBytes {
		return refuseHeadersTooLarge
	}
	if m.fieldCount > v.cfg.MaxHeaderCount {
		return refuseTooManyHeaders
	}
	name, value, r := splitField(line)
	if r != nil {
		return r
	}
	switch len(name) {
	case len("host"):
		if eqFold(name, "host", false) {
			return v.host(value)
		}
	case len("content-length"):
		if eqFold(name, "content-length", false) {
			return v.contentLength(value)
		}
		if eqFold(name, "content-length", true) {
			return refuseUnderscoreFrame
		}
	case len("transfer-encoding"):
		if eqFold(name, "transfer-encoding", false) {
			return v.transferEncoding(value)
		}
		if eqFold(name, "transfer-encoding", true) {
			return refuseUnderscoreFrame
		}
	}
	return nil
}

// splitField splits "name: value" and checks both parts:
//   - a line starting with whitespace is obs-fold, or whitespace before the
//     first field; RFC 9112 §5.2 and §2.2 let a server reject both, and we
//     do, because parsers that unfold and parsers that do not disagree.
//   - whitespace between name and colon MUST be rejected (RFC 9112 §5.1).
//   - the name is a token (RFC 9110 §5.1).
//   - the value, without its surrounding OWS, holds only field-vchar, SP
//     and HTAB (RFC 9110 §5.5): NUL, CR, LF and other controls are refused.
func splitField(line []byte) (name, value []byte, r *Refusal) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, refuseObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, refuseFieldName
	}
	name = line[:colon]
	for i, c := range name {
		if !isTchar[c] {
			if len(ows.Trim(name[i:])) == 0 {
				return nil, nil, refuseSpaceBeforeColon
			}
			return nil, nil, refuseFieldName
		}
	}
	value = ows.Trim(line[colon+1:])
	for _, c := range value {
		if !isFieldByte[c] {
			return nil, nil, refuseFieldValue
		}
	}
	return name, value, nil
}

// host enforces RFC 9112 §3.2: exactly one Host, with a valid value, and no
// userinfo (RFC 9110 §4.2.4 deprecates it; "Host: a@b" is read as either
// host by different parsers).
func (v *Validator) host(value []byte) *Refusal {
	m := &v.msg
	m.hosts++
	if m.hosts > 1 {
		return refuseHostDuplicate
	}
	if bytes.IndexByte(value, '@') >= 0 {
		return refuseHostUserinfo
	}
	if !validHost(value) {
		return refuseHostInvalid
	}
	if m.authLen > 0 && !eqFold(value, string(v.authority[:m.authLen]), false) {
		return refuseHostMismatch
	}
	return nil
}

// contentLength accepts one Content-Length field of 1–18 digits (RFC 9110
// §8.6; 18 digits cannot overflow an int64). RFC 9112 §6.3 would let us fold
// a list of identical values ("5, 5") or repeated identical fields into one;
// we refuse them instead, as we refuse "+5", "-1" and "0x5", because not every
// hop behind us folds them the same way.
func (v *Validator) contentLength(value []byte) *Refusal {
	m := &v.msg
	if m.clSeen {
		return refuseContentLengthDup
	}
	m.clSeen = true
	if len(value) == 0 || len(value) > 18 {
		return refuseContentLength
	}
	var n int64
	for _, c := range value {
		if !isDigit(c) {
			return refuseContentLength
		}
		n = n*10 + int64(c-'0')
	}
	m.remaining = n
	return nil
}

// transferEncoding accepts exactly one Transfer-Encoding field whose coding
// list is "chunked" alone (RFC 9112 §6.1, §7):
//   - the final coding is not chunked → 400 (RFC 9112 §6.3: length unknown);
//   - chunked twice → 400 (RFC 9112 §7.1: MUST NOT apply chunked twice);
//   - other codings before a final chunked → 501 (RFC 9112 §6.1: a server
//     that does not understand a coding SHOULD answer 501), since the proxy
//     de-chunks and would hand the backend a body still in gzip or the like;
//   - codings with parameters or empty list elements → 400.
//
// A second Transfer-Encoding field is refused rather than joined to the
// first, for the same reason as Content-Length lists.
func (v *Validator) transferEncoding(value []byte) *Refusal {
	m := &v.msg
	if m.teSeen {
		return refuseTEDuplicate
	}
	m.teSeen = true
	chunked, last, others := false, false, false
	for {
		i := bytes.IndexByte(value, ',')
		elem := value
		if i >= 0 {
			elem = value[:i]
		}
		elem = ows.Trim(elem)
		if !isToken(elem) {
			return refuseTEMalformed
		}
		last = eqFold(elem, "chunked", false)
		if last && chunked {
			return refuseTEDuplicate
		}
		chunked = chunked || last
		others = others || !last
		if i < 0 {
			break
		}
		value = value[i+1:]
	}
	if !last {
		return refuseTENotChunked
	}
	if others {
		return refuseTEUnsupported
	}
	return nil
}
