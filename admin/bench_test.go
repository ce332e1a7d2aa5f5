package admin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkTokensMatch measures authentication, which compares against
// every configured token on each mutation.
func BenchmarkTokensMatch(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			var sb strings.Builder
			for i := range n {
				fmt.Fprintf(&sb, "t%d:token-%d\n", i, i)
			}
			tk, err := ParseTokens(strings.NewReader(sb.String()), "bench")
			if err != nil {
				b.Fatal(err)
			}
			want := fmt.Sprintf("token-%d", n-1)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tk.Match(want); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
}

// BenchmarkStatusHandler measures GET /v1/status in-process (routing,
// backend call, JSON encoding), the request the status page sends every
// second per open tab.
func BenchmarkStatusHandler(b *testing.B) {
	s, err := New(Options{Backend: newFakeBackend()})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
