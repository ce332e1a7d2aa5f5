package admin

import (
	"crypto/subtle"
	"reflect"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	cases := []struct {
		name    string
		text    string
		want    map[string]string // token → name
		wantErr string
	}{
		{name: "named and bare", text: "# ops\n\n  ci:abc  \nxyz\n", want: map[string]string{"abc": "ci", "xyz": "admin"}},
		{name: "colon in token", text: "ci:a:b\n", want: map[string]string{"a:b": "ci"}},
		{name: "crlf", text: "ci:abc\r\n", want: map[string]string{"abc": "ci"}},
		{name: "empty file", text: "# nothing\n\n", wantErr: "tokens: no token in file"},
		{name: "empty token", text: "ok:1\nci:\n", wantErr: "tokens:2: empty token"},
		{name: "empty name", text: ":abc\n", wantErr: "tokens:1: empty token name"},
		{name: "duplicate name", text: "a\nb\n", wantErr: `tokens:2: token name "admin" already used on line 1`},
		{name: "space in token", text: "ci:a b\n", wantErr: "tokens:1: token \"ci\" contains white space"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk, err := ParseTokens(strings.NewReader(c.text), "tokens")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tk.Len() != len(c.want) {
				t.Errorf("Len %d, want %d", tk.Len(), len(c.want))
			}
			for tok, name := range c.want {
				if got, ok := tk.Match(tok); !ok || got != name {
					t.Errorf("Match(%q) = %q, %v; want %q", tok, got, ok, name)
				}
			}
			if _, ok := tk.Match("not-a-token"); ok {
				t.Error("a wrong token matched")
			}
			if _, ok := tk.Match(""); ok {
				t.Error("the empty token matched")
			}
		})
	}
}

func TestLoadTokens(t *testing.T) {
	if _, err := LoadTokens(t.TempDir() + "/missing"); err == nil {
		t.Fatal("a missing token file loaded")
	}
}

// TestMatchIsConstantTime checks the two properties that keep Match from
// leaking through timing: the comparison is crypto/subtle's, over
// equal-length digests, and every token is compared whether or not an
// earlier one matched.
func TestMatchIsConstantTime(t *testing.T) {
	tk := mustTokens(t, "a:first\nb:second\nc:third\n")
	if tk.compare != nil {
		t.Fatal("default compare is not nil")
	}
	var nilTokens *Tokens
	if _, ok := nilTokens.Match("x"); ok {
		t.Fatal("nil Tokens matched")
	}
	// The default is subtle.ConstantTimeCompare: Match falls back to it
	// when compare is nil; check the function value is the one we expect.
	if reflect.ValueOf(defaultCompare()).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Fatal("the default comparison is not subtle.ConstantTimeCompare")
	}
	for _, tok := range []string{"first", "third", "wrong", "a-much-longer-wrong-token-than-any-other"} {
		var calls int
		var lens []int
		tk.compare = func(a, b []byte) int {
			calls++
			lens = append(lens, len(a), len(b))
			return subtle.ConstantTimeCompare(a, b)
		}
		tk.Match(tok)
		if calls != 3 {
			t.Errorf("Match(%q) compared %d times, want 3 (one per token, no early exit)", tok, calls)
		}
		for _, n := range lens {
			if n != 32 {
				t.Errorf("Match(%q) compared %d-byte values, want 32-byte digests", tok, n)
			}
		}
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1:9901": true, "127.1.2.3:1": true, "[::1]:9901": true, "localhost:9901": true,
		"LOCALHOST:1": true, "127.0.0.1": true, "::1": true,
		"0.0.0.0:9901": false, ":9901": false, "[::]:9901": false, "10.0.0.1:9901": false,
		"example.com:9901": false, "": false,
	}
	for addr, want := range cases {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestTokenFileBOM: a token file saved with a UTF-8 byte order mark (as
// Windows editors do) names its first token without the BOM, and a bare
// first token matches without it.
func TestTokenFileBOM(t *testing.T) {
	tok, err := ParseTokens(strings.NewReader("\uFEFFops:s3cret\nci:other\n"), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := tok.Match("s3cret"); !ok || name != "ops" {
		t.Errorf("first token named %q (%v), want \"ops\"", name, ok)
	}
	bare, err := ParseTokens(strings.NewReader("\uFEFFs3cret\n"), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := bare.Match("s3cret"); !ok || name != "admin" {
		t.Errorf("bare first token: %q (%v), want it to match as \"admin\"", name, ok)
	}
}
