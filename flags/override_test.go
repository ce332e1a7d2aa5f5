package flags

import "testing"

func TestParseOverride(t *testing.T) {
	s := mustSet(t,
		Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{1, 0}, Control: "off", Boolean: true},
		Def{Name: "checkout", Variants: []string{"classic", "express"}, Weights: []float64{1, 0}, Control: "classic"})
	for _, c := range []struct {
		in       string
		ok       bool
		cell     string
		mask     uint64
		variants string // header after Apply over an all-control assignment
	}{
		{"cell=canary-1, new-ranker=on", true, "canary-1", 1, "new-ranker=on, checkout=classic"},
		{"checkout=express", true, "", 2, "new-ranker=off, checkout=express"},
		{"new-ranker=maybe, nope=on, =x, cell=", false, "", 0, "new-ranker=off, checkout=classic"},
		{" new-ranker=on;p=1 ,checkout=express", true, "", 3, "new-ranker=on, checkout=express"},
		{"", false, "", 0, "new-ranker=off, checkout=classic"},
	} {
		var o Override
		ok := s.ParseOverride([]byte(c.in), &o)
		var ch Choices
		s.Assign(1, 0, false, &ch)
		o.Apply(&ch)
		if ok != c.ok || string(o.Cell) != c.cell || o.Mask != c.mask || string(s.AppendHeader(nil, &ch)) != c.variants {
			t.Errorf("%q: ok %v cell %q mask %b → %q", c.in, ok, o.Cell, o.Mask, s.AppendHeader(nil, &ch))
		}
	}
}

// FuzzParseOverride: any value parses without panicking, overrides only
// configured flags to configured variants.
func FuzzParseOverride(f *testing.F) {
	for _, s := range []string{"", "cell=a, new-ranker=on", "=,=,", "new-ranker=on;x, (a b)=c", "cell=\xff"} {
		f.Add(s)
	}
	s := mustSet(f, Def{Name: "new-ranker", Variants: []string{"off", "on"}, Weights: []float64{1, 0}, Control: "off", Boolean: true})
	f.Fuzz(func(t *testing.T, v string) {
		var o Override
		s.ParseOverride([]byte(v), &o)
		if o.Mask>>1 != 0 || o.Choices[0] > 1 {
			t.Fatalf("%q: mask %b choice %d", v, o.Mask, o.Choices[0])
		}
	})
}
