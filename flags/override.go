package flags

// Override is what an X-Cellgate-Override value asks for: a cell (by
// name, nil: none) and variants of some flags (bit i of Mask set: flag i
// is forced to Choices[i]). Testers use it to reach a canary cell or a
// variant on purpose; the proxy honours it only from
// routing.trusted_proxies, and an overridden request never counts in any
// judgement (it is not a random sample).
type Override struct {
	Cell    []byte // aliases the parsed value
	Mask    uint64
	Choices Choices
}

// OverrideCellKey is the dictionary key that names a cell; no flag may be
// called so (configs reserves it).
const OverrideCellKey = "cell"

// ParseOverride reads an X-Cellgate-Override value — an RFC 8941
// dictionary "cell=canary-1, new-ranker=on" — against the snapshot s.
// Members naming an unknown flag or variant, or malformed ones, are
// ignored: a forged or stale override is not an error, it just does
// nothing. ok reports whether anything was overridden. It does not
// allocate.
func (s *Set) ParseOverride(v []byte, o *Override) (ok bool) {
	*o = Override{}
	if s == nil {
		s = &Set{}
	}
	for len(v) > 0 {
		var m []byte
		m, v = nextMember(v)
		eq := -1
		for i, b := range m {
			if b == '=' {
				eq = i
				break
			}
		}
		if eq <= 0 || eq == len(m)-1 {
			continue
		}
		key, val := m[:eq], m[eq+1:]
		if string(key) == OverrideCellKey {
			o.Cell = val
			continue
		}
		i := s.indexBytes(key)
		if i < 0 {
			continue
		}
		for j, name := range s.flags[i].def.Variants {
			if string(val) == name {
				o.Mask |= 1 << uint(i)
				o.Choices[i] = uint8(j)
				break
			}
		}
	}
	return o.Cell != nil || o.Mask != 0
}

// Apply forces the overridden flags' variants into c.
func (o *Override) Apply(c *Choices) {
	for i := range c {
		if o.Mask&(1<<uint(i)) != 0 {
			c[i] = o.Choices[i]
		}
	}
}
