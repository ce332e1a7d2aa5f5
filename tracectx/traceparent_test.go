package tracectx

import (
	"strings"
	"testing"
)

// TestParse: the examples and the invalid forms of W3C Trace Context §3.2.
func TestParse(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"spec example", valid, true},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"future version with more", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", true},
		{"future version exact", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", true},
		{"version 00 with more", valid + "-x", false},
		{"future version, more without dash", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"uppercase", strings.ToUpper(valid), false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"short", valid[:54], false},
		{"wrong separator", strings.Replace(valid, "-", "_", 1), false},
		{"non hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, ok := Parse([]byte(c.in))
			if ok != c.ok {
				t.Fatalf("Parse(%q) ok = %v, want %v", c.in, ok, c.ok)
			}
			if ok && tp.Version == 0 {
				if got := string(tp.AppendTo(nil)); got != c.in {
					t.Errorf("round trip %q → %q", c.in, got)
				}
			}
		})
	}
}

// TestNew: a started trace is valid, never all zero, sampled as asked.
func TestNew(t *testing.T) {
	zeros := 0
	rnd := func() uint64 { // all zeros twice, then something
		zeros++
		if zeros <= 2 {
			return 0
		}
		return uint64(zeros) * 0x9e3779b97f4a7c15
	}
	tp := New(rnd, true)
	back, ok := Parse(tp.AppendTo(nil))
	if !ok || back != tp || !tp.Sampled() {
		t.Errorf("New → %q: parsed %v %+v", tp.AppendTo(nil), ok, back)
	}
	if New(rnd, false).Sampled() {
		t.Error("unsampled trace has the sampled flag")
	}
}
