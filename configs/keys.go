package configs

import (
	"reflect"
	"strings"
)

// Keys lists every key of the schema as a dotted path of TOML names, in
// declaration order: "node_name", "listen.addr", "slo.fast_burn.long",
// "cell.weight" (a field of every [[cell]]), "plan" (a [[plan]] is one
// opaque value: the rollout package owns its schema). It is derived from
// Config by reflection, so a key added to the struct is listed without
// further work; the reload policy and its table test are built over it.
func Keys() []string {
	var out []string
	walkKeys(reflect.TypeFor[Config](), "", func(key string, _ []int) { out = append(out, key) })
	return out
}

// Diff lists the keys whose values differ between a and b, in Keys order.
// A [[cell]] list whose length changed counts as a change of every cell
// key. Durations compare by value, not spelling ("1s" equals "1000ms").
func Diff(a, b *Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	walkKeys(va.Type(), "", func(key string, path []int) {
		if !equalAt(va, vb, path) {
			out = append(out, key)
		}
	})
	return out
}

// walkKeys calls f for every leaf key under t with its field index path. A
// field of a slice-of-struct type ([[cell]]) contributes its element's
// fields, marked in the path by -1 (every element).
func walkKeys(t reflect.Type, prefix string, f func(key string, path []int)) {
	walkKeysAt(t, prefix, nil, f)
}

func walkKeysAt(t reflect.Type, prefix string, path []int, f func(string, []int)) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		p := append(path[:len(path):len(path)], i)
		ft := sf.Type
		switch {
		case isTable(ft):
			walkKeysAt(ft, key+".", p, f)
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			walkKeysAt(ft.Elem(), key+".", append(p, -1), f)
		default:
			f(key, p)
		}
	}
}

// isTable reports whether t is a TOML table of fixed keys: a struct that
// does not decode itself from text (Duration does).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

// equalAt compares the values at path in a and b (-1: every element).
func equalAt(a, b reflect.Value, path []int) bool {
	for k, i := range path {
		if i == -1 {
			if a.Len() != b.Len() {
				return false
			}
			for e := range a.Len() {
				if !equalAt(a.Index(e), b.Index(e), path[k+1:]) {
					return false
				}
			}
			return true
		}
		a, b = a.Field(i), b.Field(i)
	}
	if d, ok := a.Interface().(Duration); ok {
		return d.Duration == b.Interface().(Duration).Duration
	}
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true // absent and empty lists mean the same
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
