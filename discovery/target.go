package discovery

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is how a target is resolved.
type Kind uint8

const (
	// KindDNS is `dns:NAME:PORT`: the A and AAAA records of NAME.
	KindDNS Kind = iota + 1
	// KindSRV is `srv:_service._proto.NAME`: the SRV records of the name
	// and the addresses of their targets.
	KindSRV
)

// Target is one endpoint entry that names a set of endpoints.
type Target struct {
	Raw  string // as configured, the target's identity
	Kind Kind
	Name string // the DNS name queried
	Port int    // KindDNS only
}

// Parse reads a configured endpoint. ok is false for a plain host:port,
// which needs no discovery; err says what is wrong with a `dns:` or `srv:`
// entry.
func Parse(s string) (t Target, ok bool, err error) {
	switch {
	case strings.HasPrefix(s, "dns:"):
		rest := s[len("dns:"):]
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return Target{}, true, fmt.Errorf("endpoint %q: want dns:NAME:PORT", s)
		}
		name, port := rest[:i], rest[i+1:]
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > 65535 || strings.HasPrefix(port, "+") {
			return Target{}, true, fmt.Errorf("endpoint %q: port must be 1-65535", s)
		}
		if err := checkName(name); err != nil {
			return Target{}, true, fmt.Errorf("endpoint %q: %w", s, err)
		}
		return Target{Raw: s, Kind: KindDNS, Name: name, Port: p}, true, nil
	case strings.HasPrefix(s, "srv:"):
		name := s[len("srv:"):]
		labels := strings.Split(name, ".")
		if len(labels) < 3 || !strings.HasPrefix(labels[0], "_") || !strings.HasPrefix(labels[1], "_") {
			return Target{}, true, fmt.Errorf("endpoint %q: want srv:_service._proto.NAME", s)
		}
		if err := checkName(name); err != nil {
			return Target{}, true, fmt.Errorf("endpoint %q: %w", s, err)
		}
		return Target{Raw: s, Kind: KindSRV, Name: name}, true, nil
	}
	return Target{}, false, nil
}

// checkName accepts a DNS name: dot-separated labels of 1-63 letters,
// digits, '-' or '_' (SRV labels), 253 bytes at most, an optional final dot.
func checkName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("bad DNS name %q", name)
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("bad DNS name %q", name)
		}
		for i := 0; i < len(l); i++ {
			b := l[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return fmt.Errorf("bad DNS name %q", name)
			}
		}
	}
	return nil
}
