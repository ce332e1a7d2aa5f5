package configs

import (
	"strconv"
	"strings"
)

// lines maps dotted key paths to the line they are set on, so validation
// can say file:line. BurntSushi/toml reports positions only for syntax
// errors, so this scans the source for table headers and "key =" lines; it
// does not parse values. Array-of-tables entries are numbered:
// "cell.1.weight" is the weight of the second [[cell]].
type lines map[string]int

func locate(src string) lines {
	l := lines{}
	table := ""
	arrays := map[string]int{}
	for i, raw := range strings.Split(src, "\n") {
		n := i + 1
		s := strings.TrimSpace(raw)
		switch {
		case s == "" || s[0] == '#':
			continue
		case strings.HasPrefix(s, "[["):
			name := strings.TrimSpace(strings.Trim(cutComment(s), "[] \t"))
			idx := arrays[name]
			arrays[name] = idx + 1
			table = name + "." + strconv.Itoa(idx)
			l.set(table, n)
			l.set(name, n)
		case s[0] == '[':
			table = strings.TrimSpace(strings.Trim(cutComment(s), "[] \t"))
			l.set(table, n)
		default:
			key, _, ok := strings.Cut(s, "=")
			if !ok {
				continue
			}
			key = strings.Trim(strings.TrimSpace(key), `"'`)
			full := key
			if table != "" {
				full = table + "." + key
			}
			l.set(full, n)
			// Unindexed form too, for keys reported without the index.
			if base, ok := unindex(full); ok {
				l.set(base, n)
			}
		}
	}
	return l
}

func (l lines) set(k string, n int) {
	if _, ok := l[k]; !ok {
		l[k] = n
	}
}

// line returns the line of key, or of its nearest enclosing table, or 0.
func (l lines) line(key string) int {
	if base, _, ok := strings.Cut(key, "["); ok {
		key = base // "routing.sticky_key[1]" is on the sticky_key line
	}
	for k := key; k != ""; {
		if n, ok := l[k]; ok {
			return n
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// unindex drops numeric path parts: "cell.1.weight" → "cell.weight".
func unindex(k string) (string, bool) {
	parts := strings.Split(k, ".")
	out := parts[:0]
	changed := false
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err == nil {
			changed = true
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "."), changed
}

func cutComment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}
