package balancer

import "testing"

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		err  bool
	}{
		{"ip", Source{Kind: SourceIP}, false},
		{"header:X-User-ID", Source{SourceHeader, "X-User-ID"}, false},
		{"cookie:session", Source{SourceCookie, "session"}, false},
		{"query:uid", Source{SourceQuery, "uid"}, false},
		{"header:", Source{}, true},
		{"header:X User", Source{}, true},
		{"cookie:a=b", Source{}, true},
		{"body:x", Source{}, true},
		{"IP", Source{}, true},
		{"", Source{}, true},
		{"header", Source{}, true},
	} {
		got, err := ParseSource(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSource(%q) = %v, %v; want %v, err=%v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"ip", "header:X-User-ID", "cookie:s", "query:q", "x:y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			return
		}
		// A parsed source round-trips through its config spelling.
		again, err := ParseSource(src.String())
		if err != nil || again != src {
			t.Fatalf("%q → %v → %v, %v", s, src, again, err)
		}
	})
}
