package tracectx

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts is 55+ lowercase bytes
// that its version-00 form reproduces (trace-id, parent-id and flags).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"", "00-", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		tp, ok := Parse(in)
		if !ok {
			return
		}
		if len(in) < Len {
			t.Fatalf("accepted %q, shorter than %d", in, Len)
		}
		out := tp.AppendTo(nil)
		if !bytes.Equal(out[3:], in[3:Len]) {
			t.Fatalf("accepted %q, writes %q", in, out)
		}
		if _, ok := Parse(out); !ok {
			t.Fatalf("its own output %q does not parse", out)
		}
	})
}
