package frontdoor

// chunkSizeLine checks "chunk-size *chunk-ext" (RFC 9112 §7.1), CRLF
// removed. The size is 1–15 hex digits, read as fasthttp reads it, so both
// agree on where the chunk ends. Whitespace directly after the size is
// refused: RFC 9112 §7.1.1 allows BWS before ";", but fasthttp rejects it
// and older parsers stop reading the size there, so refusing it keeps every
// hop in agreement.
func (v *Validator) chunkSizeLine(line []byte) *Refusal {
	var n int64
	i := 0
	for ; i < len(line) && hexVal[line[i]] >= 0; i++ {
		if i == maxChunkHexDigits {
			return refuseChunkOverflow
		}
		n = n<<4 | int64(hexVal[line[i]])
	}
	if i == 0 {
		return refuseChunkSize
	}
	if i < len(line) {
		if line[i] != ';' {
			return refuseChunkSize
		}
		if !validChunkExt(line[i:]) {
			return refuseChunkExt
		}
	}
	if n == 0 {
		v.state = stTrailer
		return nil
	}
	v.msg.remaining = n
	v.state = stChunkData
	return nil
}

// validChunkExt checks *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
// chunk-ext-val ] ) where the name is a token and the value a token or a
// quoted-string (RFC 9112 §7.1.1). A bare ";", control characters and
// trailing whitespace all fail.
func validChunkExt(b []byte) bool {
	for len(b) > 0 {
		b = skipWS(b)
		if len(b) == 0 || b[0] != ';' {
			return false
		}
		b = skipWS(b[1:])
		n := tokenPrefix(b)
		if n == 0 {
			return false
		}
		b = b[n:]
		if rest := skipWS(b); len(rest) > 0 && rest[0] == '=' {
			b = skipWS(rest[1:])
			if len(b) > 0 && b[0] == '"' {
				n = quotedPrefix(b)
			} else {
				n = tokenPrefix(b)
			}
			if n == 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

func skipWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// tokenPrefix returns the length of the token at the start of b.
func tokenPrefix(b []byte) int {
	n := 0
	for n < len(b) && isTchar[b[n]] {
		n++
	}
	return n
}

// quotedPrefix returns the length of the quoted-string (RFC 9110 §5.6.4) at
// the start of b, or 0 if b does not start with a complete one.
func quotedPrefix(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(b) || !isQuotedPair(b[i]) {
				return 0
			}
		case !isQdtext(c):
			return 0
		}
	}
	return 0
}

func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e || c >= 0x80
}

func isQuotedPair(c byte) bool {
	return c == '\t' || c == ' ' || 0x21 <= c && c != 0x7f
}

// trailerLine checks one field line of the trailer section (RFC 9112 §7.1.2)
// with the header-section rules, and refuses fields that must not be trailers
// (RFC 9110 §6.5.1): framing, routing, and the controls and credentials a
// backend that merges trailers into headers would act on. The empty line ends
// the request.
func (v *Validator) trailerLine(line []byte) *Refusal {
	if len(line) == 0 {
		v.endMessage()
		return nil
	}
	m := &v.msg
	m.fieldBytes += len(line) + 2
	m.fieldCount++
	if m.fieldBytes > v.cfg.MaxHeaderBytes || m.fieldCount > v.cfg.MaxHeaderCount {
		return refuseTrailersTooLarge
	}
	name, _, r := splitField(line)
	if r != nil {
		return r
	}
	for _, bad := range forbiddenTrailers {
		if eqFold(name, bad, true) {
			return refuseTrailer
		}
	}
	return nil
}

// forbiddenTrailers are lower-case names refused in a trailer section,
// underscore variants included.
var forbiddenTrailers = [...]string{
	"content-length", "transfer-encoding", "host", "trailer", "te",
	"connection", "keep-alive", "upgrade", "content-type", "content-encoding",
	"content-range", "authorization", "proxy-authorization", "cookie",
	"expect", "max-forwards", "cache-control", "range",
}
