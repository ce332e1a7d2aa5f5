package frontdoor

import "bytes"

// requestLine checks "method SP request-target SP HTTP-version" (RFC 9112
// §3), CRLF already removed. Exactly one SP separates the parts: RFC 9112 §3
// lets a recipient split on any whitespace, but every hop must split the
// same way, so we take the grammar literally.
func (v *Validator) requestLine(line []byte) *Refusal {
	if len(line) == 0 {
		v.msg.blanks++
		if v.msg.blanks > maxLeadingBlanks {
			return refuseLeadingBlanks
		}
		return nil
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return refuseRequestLine
	}
	method, rest := line[:sp], line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return refuseRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if !isToken(method) {
		return refuseMethod
	}
	if string(method) == "PRI" && string(target) == "*" && string(version) == "HTTP/2.0" {
		// The HTTP/2 preface's first line (RFC 9113 §3.4): the proxy
		// sorts such connections out before the front door reads them
		// when listen.h2c is on, so here it is off.
		return refuseH2Preface
	}
	if r := v.version(version); r != nil {
		return r
	}
	// RFC 9110 §9.3.6: CONNECT asks for a tunnel, which a reverse proxy does
	// not offer. §9.3.8: TRACE reflects the request, credentials included
	// (cross-site tracing), so we disable it for every resource.
	switch string(method) {
	case "CONNECT":
		return refuseConnect
	case "TRACE":
		return refuseTrace
	}
	if r := v.target(method, target); r != nil {
		return r
	}
	v.state = stHeader
	return nil
}

// version accepts exactly HTTP/1.0 and HTTP/1.1. HTTP-name is case-sensitive
// (RFC 9112 §2.3). A well-formed other version gets 505 (RFC 9110 §15.6.6);
// we do not process HTTP/1.2+ as 1.1 because the parser behind us would treat
// it as 1.0, and two views of one message's framing is what smuggling needs.
func (v *Validator) version(b []byte) *Refusal {
	if len(b) != 8 || string(b[:5]) != "HTTP/" || b[6] != '.' || !isDigit(b[5]) || !isDigit(b[7]) {
		return refuseVersion
	}
	if b[5] != '1' || (b[7] != '0' && b[7] != '1') {
		return refuseVersionNumber
	}
	v.msg.http10 = b[7] == '0'
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// target checks the request-target (RFC 9112 §3.2): origin-form, absolute-form
// with an http or https scheme, or "*" for OPTIONS. authority-form belongs to
// CONNECT, refused above. Only visible ASCII is allowed (RFC 3986 §2: other
// bytes must be percent-encoded), percent-encodings must be complete, and a
// fragment is never part of a request-target.
func (v *Validator) target(method, t []byte) *Refusal {
	if len(t) == 0 {
		return refuseTarget
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isTargetByte[c] {
			if c == '#' {
				return refuseTargetEncoding
			}
			return refuseTargetBytes
		}
		if c == '%' {
			if i+2 >= len(t) || hexVal[t[i+1]] < 0 || hexVal[t[i+2]] < 0 {
				return refuseTargetEncoding
			}
			i += 2
		}
	}
	switch {
	case t[0] == '/':
		return nil
	case len(t) == 1 && t[0] == '*':
		// RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS,
		// which the front door answers itself.
		if string(method) == "OPTIONS" {
			return answerOptionsStar
		}
		return refuseTarget
	default:
		return v.absoluteForm(t)
	}
}

// absoluteForm checks an absolute-form target and keeps its authority, which
// the Host field must then equal. RFC 9112 §3.2.2 tells an origin to ignore
// Host in this case; a proxy that routes on Host while the backend reads the
// target is a routing-confusion bug, so we insist that both agree instead.
func (v *Validator) absoluteForm(t []byte) *Refusal {
	var rest []byte
	switch {
	case hasPrefixFold(t, "http://"):
		rest = t[len("http://"):]
	case hasPrefixFold(t, "https://"):
		rest = t[len("https://"):]
	default:
		return refuseTarget
	}
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	auth := rest[:end]
	if bytes.IndexByte(auth, '@') >= 0 {
		return refuseHostUserinfo
	}
	if len(auth) == 0 || len(auth) > maxAuthority || !validHost(auth) {
		return refuseTargetAuthority
	}
	for i, c := range auth {
		v.authority[i] = lower(c)
	}
	v.msg.authLen = len(auth)
	return nil
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && eqFold(b[:len(prefix)], prefix, false)
}

// validHost checks uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2),
// more strictly than RFC 3986 allows: a reg-name may hold only letters,
// digits, "-", ".", "_", "~" and percent-encodings — the sub-delims RFC 3986
// also permits (",", ";", "=", "!", …) appear in no real host name and are
// list or parameter separators to other parsers. An IP-literal holds hex
// digits, ":" and "." only (no IPvFuture). A port, when its colon is present,
// is 1–5 digits up to 65535. The empty value is valid (RFC 9110 §7.2).
func validHost(h []byte) bool {
	if len(h) == 0 {
		return true
	}
	var port []byte
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 2 {
			return false
		}
		for _, c := range h[1:end] {
			if hexVal[c] < 0 && c != ':' && c != '.' {
				return false
			}
		}
		rest := h[end+1:]
		if len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
			if len(port) == 0 {
				return false
			}
		}
	} else {
		name := h
		if i := bytes.IndexByte(h, ':'); i >= 0 {
			name, port = h[:i], h[i+1:]
			if len(port) == 0 {
				return false
			}
		}
		if len(name) == 0 || !validRegName(name) {
			return false
		}
	}
	return validPort(port)
}

func validRegName(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' {
			if i+2 >= len(b) || hexVal[b[i+1]] < 0 || hexVal[b[i+2]] < 0 {
				return false
			}
			i += 2
			continue
		}
		if !isHostByte[c] {
			return false
		}
	}
	return true
}

func validPort(p []byte) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
