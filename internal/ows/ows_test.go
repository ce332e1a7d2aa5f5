package ows

import (
	"bytes"
	"testing"
)

// TestTrimMatchesBytes: Trim agrees with bytes.Trim on the cutset it
// replaces.
func TestTrimMatchesBytes(t *testing.T) {
	for _, s := range []string{"", "\r\n", "a\r\n", "a\n\r\n", " a b \t", "\t\t", "a: b \r\n", "\r", " x\r\n ", "v\t\r", "\tv", "\t v\t "} {
		if got, want := Trim([]byte(s)), bytes.Trim([]byte(s), " \t"); !bytes.Equal(got, want) {
			t.Errorf("Trim(%q) = %q, want %q", s, got, want)
		}
	}
}
