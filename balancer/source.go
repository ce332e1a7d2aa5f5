package balancer

import (
	"fmt"
	"strings"
)

// SourceKind says where a sticky key is read from.
type SourceKind int

const (
	SourceHeader SourceKind = iota + 1 // a request header, by name
	SourceCookie                       // a cookie, by name
	SourceQuery                        // a query parameter, by name
	SourceIP                           // the client address
)

// String returns the kind's config spelling.
func (k SourceKind) String() string {
	switch k {
	case SourceHeader:
		return "header"
	case SourceCookie:
		return "cookie"
	case SourceQuery:
		return "query"
	case SourceIP:
		return "ip"
	}
	return fmt.Sprintf("SourceKind(%d)", int(k))
}

// Source is one entry of routing.sticky_key.
type Source struct {
	Kind SourceKind
	Name string // header, cookie or parameter name; empty for SourceIP
}

// String returns the config spelling, e.g. "header:X-User-ID".
func (s Source) String() string {
	if s.Kind == SourceIP {
		return "ip"
	}
	return s.Kind.String() + ":" + s.Name
}

// ParseSource parses one routing.sticky_key entry: "header:NAME",
// "cookie:NAME", "query:NAME" or "ip". Names must be RFC 9110 tokens
// (header and cookie names are tokens; query names are restricted the same
// way so a config cannot name a key no client can send).
func ParseSource(s string) (Source, error) {
	if s == "ip" {
		return Source{Kind: SourceIP}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok {
		return Source{}, fmt.Errorf("sticky key source %q: want header:NAME, cookie:NAME, query:NAME or ip", s)
	}
	var k SourceKind
	switch kind {
	case "header":
		k = SourceHeader
	case "cookie":
		k = SourceCookie
	case "query":
		k = SourceQuery
	default:
		return Source{}, fmt.Errorf("sticky key source %q: unknown kind %q (want header, cookie, query or ip)", s, kind)
	}
	if name == "" {
		return Source{}, fmt.Errorf("sticky key source %q: empty name", s)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return Source{}, fmt.Errorf("sticky key source %q: name has invalid character %q", s, name[i])
		}
	}
	return Source{Kind: k, Name: name}, nil
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
