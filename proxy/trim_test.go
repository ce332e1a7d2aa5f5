package proxy

import (
	"bytes"
	"testing"
)

// TestTrimMatchesBytes: the hand-rolled trims agree with bytes.TrimRight
// and bytes.Trim on the cutsets they replace.
func TestTrimMatchesBytes(t *testing.T) {
	for _, s := range []string{"", "\r\n", "a\r\n", "a\n\r\n", " a b \t", "\t\t", "a: b \r\n", "\r", " x\r\n ", "v\t\r", "\tv", "\t v\t "} {
		if got, want := trimCRLF([]byte(s)), bytes.TrimRight([]byte(s), "\r\n"); !bytes.Equal(got, want) {
			t.Errorf("trimCRLF(%q) = %q, want %q", s, got, want)
		}
		if got, want := trimOWS([]byte(s)), bytes.Trim([]byte(s), " \t"); !bytes.Equal(got, want) {
			t.Errorf("trimOWS(%q) = %q, want %q", s, got, want)
		}
	}
}
