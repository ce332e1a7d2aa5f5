package strictb64

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestRefusesOutsideAlphabet(t *testing.T) {
	for name, tc := range map[string]struct {
		dec func(dst, src []byte) ([]byte, error)
		in  string
	}{
		"url newline":         {AppendRawURL, "Y\n2VsbC1h"},
		"url carriage return": {AppendRawURL, "Y2Vs\rbC1h"},
		"url trailing CRLF":   {AppendRawURL, "Y2VsbC1h\r\n"},
		"url padding":         {AppendRawURL, "YQ=="},
		"url std alphabet":    {AppendRawURL, "a+b/"},
		"url space":           {AppendRawURL, "Y2Vs bC1h"},
		"url NUL":             {AppendRawURL, "Y2Vs\x00bC1h"},
		"url padding bits":    {AppendRawURL, "YR"},
		"std newline":         {AppendStd, "dGhlIHNhbXBsZSBub25jZQ=\n="},
		"std url alphabet":    {AppendStd, "a-b_"},
		"std missing padding": {AppendStd, "YQ"},
	} {
		if out, err := tc.dec(nil, []byte(tc.in)); err == nil {
			t.Errorf("%s: %q accepted as %q", name, tc.in, out)
		}
	}
}

func TestDecodes(t *testing.T) {
	if out, err := AppendRawURL([]byte("x"), []byte("Y2VsbC1h")); err != nil || string(out) != "xcell-a" {
		t.Fatalf("AppendRawURL = %q, %v", out, err)
	}
	// The WebSocket key of RFC 6455 §1.3.
	if out, err := AppendStd(nil, []byte("dGhlIHNhbXBsZSBub25jZQ==")); err != nil || string(out) != "the sample nonce" {
		t.Fatalf("AppendStd = %q, %v", out, err)
	}
}

// FuzzDecode: whatever either decoder accepts re-encodes to exactly the
// input, so no value has a second accepted spelling.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("Y2VsbC1h"))
	f.Add([]byte("Y\n2VsbC1h"))
	f.Add([]byte("dGhlIHNhbXBsZSBub25jZQ=="))
	f.Fuzz(func(t *testing.T, in []byte) {
		if out, err := AppendRawURL(nil, in); err == nil {
			if re := base64.RawURLEncoding.AppendEncode(nil, out); !bytes.Equal(re, in) {
				t.Fatalf("AppendRawURL accepted %q, which encodes as %q", in, re)
			}
		}
		if out, err := AppendStd(nil, in); err == nil {
			if re := base64.StdEncoding.AppendEncode(nil, out); !bytes.Equal(re, in) {
				t.Fatalf("AppendStd accepted %q, which encodes as %q", in, re)
			}
		}
	})
}
