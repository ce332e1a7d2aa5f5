package flags

// Exposed parses an X-Cellgate-Exposed value from an upstream — an RFC 8941
// list of flag names, members possibly with parameters — and returns the
// flags it names as a bit set by flag index. It is lenient, as the request
// path must be: a member that is not one of the flags (or not a key at all)
// is skipped, not an error, and a malformed value marks nothing it cannot
// read. Parameters (";a=1") and inner lists are ignored. It does not
// allocate.
func (s *Set) Exposed(v []byte) uint64 {
	var out uint64
	for len(v) > 0 {
		var m []byte
		m, v = nextMember(v)
		if i := s.indexBytes(m); i >= 0 {
			out |= 1 << uint(i)
		}
	}
	return out
}

// nextMember splits the first list member off v: its bare item with
// surrounding whitespace and any parameters cut, then the rest after the
// comma.
func nextMember(v []byte) (member, rest []byte) {
	end := len(v)
	for i, b := range v {
		if b == ',' {
			end = i
			rest = v[i+1:]
			break
		}
	}
	m := v[:end]
	for i, b := range m {
		if b == ';' {
			m = m[:i]
			break
		}
	}
	for len(m) > 0 && (m[0] == ' ' || m[0] == '\t') {
		m = m[1:]
	}
	for len(m) > 0 && (m[len(m)-1] == ' ' || m[len(m)-1] == '\t') {
		m = m[:len(m)-1]
	}
	return m, rest
}

// indexBytes is Index for a name given as bytes, without allocating.
func (s *Set) indexBytes(name []byte) int {
	for i := range s.flags {
		if string(name) == s.flags[i].def.Name {
			return i
		}
	}
	return -1
}
