package flags

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"testing"
)

// TestOverrideCookieRoundTrip: a minted cookie verifies for its key before
// its expiry and gives back the dictionary; after the expiry, for another
// key, with any one byte changed or under another secret it does not.
func TestOverrideCookieRoundTrip(t *testing.T) {
	c := NewOverrideCookie([]byte("s3cret"))
	v, err := c.Mint([]byte("u1"), "cell=canary-1, new-ranker=on", 1000)
	if err != nil {
		t.Fatal(err)
	}
	dict, _, ok := c.Parse([]byte(v), []byte("u1"), 999, nil)
	if !ok || string(dict) != "cell=canary-1, new-ranker=on" {
		t.Fatalf("valid cookie: ok %v, dict %q", ok, dict)
	}
	if _, _, ok := c.Parse([]byte(v), []byte("u1"), 1000, nil); ok {
		t.Error("accepted at its expiry")
	}
	if _, _, ok := c.Parse([]byte(v), []byte("u2"), 999, nil); ok {
		t.Error("accepted for another key")
	}
	if _, _, ok := NewOverrideCookie([]byte("other")).Parse([]byte(v), []byte("u1"), 999, nil); ok {
		t.Error("accepted under another secret")
	}
	for i := range v {
		b := []byte(v)
		b[i] ^= 1
		if _, _, ok := c.Parse(b, []byte("u1"), 999, nil); ok {
			t.Errorf("accepted with byte %d changed: %q", i, b)
		}
	}
	if NewOverrideCookie(nil) != nil {
		t.Error("a codec without a secret")
	}
	if _, _, ok := (*OverrideCookie)(nil).Parse([]byte(v), []byte("u1"), 999, nil); ok {
		t.Error("accepted without a secret")
	}
}

// TestOverrideCookieParseAllocs: verifying a cookie does not allocate once
// the scratch buffer has grown (it runs on the hot path).
func TestOverrideCookieParseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	c := NewOverrideCookie([]byte("s3cret"))
	v, _ := c.Mint([]byte("u1"), "cell=canary-1", 1000)
	val, key := []byte(v), []byte("u1")
	scratch := make([]byte, 0, 256)
	c.Parse(val, key, 999, scratch)
	if n := testing.AllocsPerRun(100, func() { _, scratch, _ = c.Parse(val, key, 999, scratch) }); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}

// FuzzOverrideCookie: Parse never panics on any value, and whatever it
// accepts re-mints to exactly the same value (one spelling per cookie).
func FuzzOverrideCookie(f *testing.F) {
	c := NewOverrideCookie([]byte("fuzz-secret"))
	good, _ := c.Mint([]byte("u1"), "cell=canary-1, new-ranker=on", 2000)
	f.Add([]byte(good), []byte("u1"), int64(1000))
	f.Fuzz(func(t *testing.T, value, key []byte, now int64) {
		dict, _, ok := c.Parse(value, key, now, nil)
		if !ok {
			return
		}
		// One spelling per cookie: minting what was accepted gives the
		// same value back.
		dot := bytes.IndexByte(value, '.')
		payload, err := base64.RawURLEncoding.DecodeString(string(value[:dot]))
		if err != nil {
			t.Fatalf("accepted %q: %v", value, err)
		}
		again, err := c.Mint(key, string(dict), int64(binary.BigEndian.Uint64(payload)))
		if err != nil || again != string(value) {
			t.Fatalf("accepted %q, which mints as %q (%v)", value, again, err)
		}
	})
}
