package flags

import (
	"testing"
)

func TestExposed(t *testing.T) {
	s := mustSet(t, def("new-ranker", 1, 1), def("checkout", 1, 1), def("search", 1, 1))
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"", 0},
		{"new-ranker", 1},
		{"checkout, search", 6},
		{" search ;x=1 ,new-ranker", 5},
		{"unknown, checkout", 2},
		{"New-Ranker", 0}, // keys are lowercase: no match
		{",,,", 0},
		{"(new-ranker checkout)", 0}, // inner lists are not flag names
		{"checkout,", 2},
	} {
		if got := s.Exposed([]byte(c.in)); got != c.want {
			t.Errorf("Exposed(%q) = %b, want %b", c.in, got, c.want)
		}
	}
}

// FuzzExposed: any upstream value parses without panicking, only marks
// configured flags, and a value naming flag i marks it.
func FuzzExposed(f *testing.F) {
	for _, s := range []string{"", "new-ranker", "a, b;q=1, (c d)", "\x00,\xff", "checkout ,  search"} {
		f.Add(s)
	}
	s := mustSet(f, def("new-ranker", 1, 1), def("checkout", 1, 1), def("search", 1, 1))
	f.Fuzz(func(t *testing.T, v string) {
		got := s.Exposed([]byte(v))
		if got>>3 != 0 {
			t.Fatalf("Exposed(%q) = %b marks a flag that does not exist", v, got)
		}
		if s.Exposed([]byte(v+", checkout"))&2 == 0 {
			t.Fatalf("Exposed(%q + \", checkout\") does not mark checkout", v)
		}
	})
}
