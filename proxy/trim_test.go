package proxy

import (
	"bytes"
	"testing"
)

// TestTrimMatchesBytes: the hand-rolled trim agrees with bytes.TrimRight
// on the cutset it replaces (internal/ows tests the OWS trim).
func TestTrimMatchesBytes(t *testing.T) {
	for _, s := range []string{"", "\r\n", "a\r\n", "a\n\r\n", " a b \t", "\t\t", "a: b \r\n", "\r", " x\r\n ", "v\t\r", "\tv", "\t v\t "} {
		if got, want := trimCRLF([]byte(s)), bytes.TrimRight([]byte(s), "\r\n"); !bytes.Equal(got, want) {
			t.Errorf("trimCRLF(%q) = %q, want %q", s, got, want)
		}
	}
}
