package accesslog

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzJSONString: any bytes a client sends (path, host, ids) make a JSON
// string that parses, and valid UTF-8 comes back unchanged.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "/a?b=c", "\"\\\n\r\t\x00\x1f", "<script>&", "caf\xc3\xa9", "\xff\xfe", "\xe2\x28\xa1", "\xed\xa0\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := appendJSONString(nil, in)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: not a JSON string: %v", in, out, err)
		}
		if utf8.Valid(in) && back != string(in) {
			t.Fatalf("%q → %s → %q: changed", in, out, back)
		}
		if s := appendJSONString(nil, string(in)); string(s) != string(out) {
			t.Fatalf("string and []byte forms differ: %s vs %s", s, out)
		}
	})
}
