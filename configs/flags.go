package configs

import (
	"fmt"
	"math"
	"sort"
)

// Flag is one [[flag]]: a feature flag whose variants are assigned to users
// by the same sticky key and weighted rendezvous hash as cells, salted with
// the flag's name (package flags), and judged and reverted like cells.
type Flag struct {
	// Name is an RFC 8941 key (lowercase letter or '*' first, then
	// lowercase letters, digits, '_', '-', '.', '*'), because it is a key of
	// the X-Cellgate-Flags dictionary; "cell" is reserved for overrides.
	Name string `toml:"name"`
	// Variants maps each variant (an RFC 8941 token) to its weight. As
	// with cells, weights are relative: a variant's share is its weight
	// over the sum. At least two variants; at least one weight > 0.
	Variants map[string]float64 `toml:"variants"`
	// Control is the variant the others are judged against, and the one a
	// flag rollout's variant takes its share from. Empty: "off" for a
	// boolean flag; otherwise it must be named.
	Control string `toml:"control"`
	// Type is "boolean" (variants exactly "on" and "off", evaluated to true
	// and false over OFREP) or "" / "string" (the variant name is the
	// value).
	Type string `toml:"type"`
	// Exposure is "all" (default: every proxied request counts for the
	// flag's judgement) or "marked" (only requests whose response names the
	// flag in X-Cellgate-Exposed count).
	Exposure string `toml:"exposure"`
}

// Flags holds settings shared by every flag.
type Flags struct {
	// OFREPPrefix, when set, serves the OpenFeature Remote Evaluation
	// Protocol on the data-plane listener under it ("/_cellgate" →
	// "/_cellgate/ofrep/v1/evaluate/flags"). Empty: only on the admin
	// listener.
	OFREPPrefix string `toml:"ofrep_prefix"`
}

// Flag types and exposures a config may name.
const (
	FlagBoolean    = "boolean"
	FlagString     = "string"
	ExposureAll    = "all"
	ExposureMarked = "marked"
)

// ControlVariant is the flag's control with its default filled in.
func (f *Flag) ControlVariant() string {
	if f.Control == "" && f.Type == FlagBoolean {
		return "off"
	}
	return f.Control
}

// VariantNames returns the flag's variants in sorted order: the order every
// node indexes them in, whatever order the file lists them.
func (f *Flag) VariantNames() []string {
	out := make([]string, 0, len(f.Variants))
	for v := range f.Variants {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// maxFlags bounds [[flag]] entries: each costs a hash per proxied request.
const maxFlags = 64

// maxVariants bounds a flag's variants (indices fit a byte).
const maxVariants = 32

func (c *Config) validateFlags(v *validator) {
	if len(c.FlagList) > maxFlags {
		v.add("flag", "%d flags: at most %d", len(c.FlagList), maxFlags)
	}
	seen := map[string]int{}
	for i := range c.FlagList {
		f := &c.FlagList[i]
		key := fmt.Sprintf("flag.%d", i)
		switch {
		case f.Name == "":
			v.add(key+".name", "a flag needs a name")
		case f.Name == "cell":
			v.add(key+".name", `"cell" is reserved (X-Cellgate-Override uses it for the cell)`)
		case !IsSFKey(f.Name):
			v.add(key+".name", "flag name %q must be an RFC 8941 key: a lowercase letter or '*', then lowercase letters, digits, '_', '-', '.' or '*', at most %d", clipName(f.Name), maxCellName)
		default:
			if j, dup := seen[f.Name]; dup {
				v.add(key+".name", "duplicate flag name %q (also flag %d, line %d)", f.Name, j+1, v.loc.line(fmt.Sprintf("flag.%d.name", j)))
			}
			seen[f.Name] = i
		}
		validateVariants(v, key, f)
		switch f.Exposure {
		case "", ExposureAll, ExposureMarked:
		default:
			v.add(key+".exposure", "exposure %q must be %q or %q", f.Exposure, ExposureAll, ExposureMarked)
		}
	}
	if p := c.FlagSettings.OFREPPrefix; p != "" && (p[0] != '/' || p[len(p)-1] == '/' || !isPathPrefix(p)) {
		v.add("flags.ofrep_prefix", "%q must start with / and not end with / (e.g. \"/_cellgate\"); letters, digits, '/', '-', '_', '.' only", p)
	}
}

// validateVariants checks a flag's variants, control and type.
func validateVariants(v *validator, key string, f *Flag) {
	total := 0.0
	if len(f.Variants) < 2 || len(f.Variants) > maxVariants {
		v.add(key+".variants", "a flag needs 2 to %d variants, got %d", maxVariants, len(f.Variants))
	}
	for _, name := range f.VariantNames() {
		w := f.Variants[name]
		if !IsSFToken(name) {
			v.add(key+".variants", "variant %q must be an RFC 8941 token (a letter or '*' first, then tchar, ':' or '/')", clipName(name))
		}
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			v.add(key+".variants", "variant %q: weight must be a non-negative number, got %v", name, w)
		} else {
			total += w
		}
	}
	if len(f.Variants) > 0 && total == 0 {
		v.add(key+".variants", "all variant weights are zero: no request could be assigned")
	}
	switch f.Type {
	case "", FlagString:
	case FlagBoolean:
		_, on := f.Variants["on"]
		_, off := f.Variants["off"]
		if len(f.Variants) != 2 || !on || !off {
			v.add(key+".type", `a boolean flag has exactly the variants "on" and "off"`)
		}
	default:
		v.add(key+".type", "type %q must be %q or %q", f.Type, FlagBoolean, FlagString)
	}
	ctl := f.ControlVariant()
	if ctl == "" {
		v.add(key+".control", "name the control variant (the one the others are judged against)")
	} else if _, ok := f.Variants[ctl]; !ok {
		v.add(key+".control", "control %q is not one of the variants", ctl)
	}
}

// IsSFKey reports whether s is an RFC 8941 §3.1.2 key, at most maxCellName
// bytes (a flag name is also a metric label and a URL path segment).
func IsSFKey(s string) bool {
	if s == "" || len(s) > maxCellName || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.' || b == '*') {
			return false
		}
	}
	return true
}

// IsSFToken reports whether s is an RFC 8941 §3.3.4 token (ALPHA or '*'
// first, then tchar, ':' or '/'), at most maxCellName bytes.
func IsSFToken(s string) bool {
	if s == "" || len(s) > maxCellName || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isTchar(b) && b != ':' && b != '/' {
			return false
		}
	}
	return true
}

func isAlpha(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// isTchar is RFC 9110 §5.6.2's tchar.
func isTchar(b byte) bool {
	if isAlnum(b) {
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func isPathPrefix(p string) bool {
	for i := 0; i < len(p); i++ {
		if b := p[i]; !isAlnum(b) && b != '/' && b != '-' && b != '_' && b != '.' {
			return false
		}
	}
	return true
}
