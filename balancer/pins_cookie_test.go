package balancer

import (
	"bytes"
	"testing"
	"time"
)

func TestPinCookieRoundTrip(t *testing.T) {
	c := NewPinCookie([]byte("fleet secret"))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	v := c.Append(nil, 42, "stable-a", now-int64(time.Minute), now)
	cell, assigned, seen, _, ok := c.Parse(v, 42, nil)
	if !ok || string(cell) != "stable-a" || assigned != now-int64(time.Minute) || seen != now {
		t.Fatalf("Parse(%s) = %q %d %d %v", v, cell, assigned, seen, ok)
	}
	// Another node with the same secret accepts it.
	if _, _, _, _, ok := NewPinCookie([]byte("fleet secret")).Parse(v, 42, nil); !ok {
		t.Fatal("a second codec with the same secret rejects the cookie")
	}
	if NewPinCookie(nil) != nil {
		t.Fatal("an empty secret must disable cookie pins")
	}
}

// TestPinCookieTampered: every single-byte change, another key, another
// secret and malformed values are rejected without error.
func TestPinCookieTampered(t *testing.T) {
	c := NewPinCookie([]byte("fleet secret"))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	v := c.Append(nil, 42, "canary", now, now)
	for i := range v {
		for _, b := range []byte{'0', '9', 'A', '_', '.', 'x'} {
			if v[i] == b {
				continue
			}
			w := bytes.Clone(v)
			w[i] = b
			if _, _, _, _, ok := c.Parse(w, 42, nil); ok {
				t.Fatalf("tampered cookie %s accepted", w)
			}
		}
	}
	// encoding/base64 skips CR and LF even in Strict mode; a pin must not
	// have a second spelling with one inserted anywhere (FuzzPinCookie).
	for i := range len(v) + 1 {
		for _, b := range []byte{'\n', '\r'} {
			w := append(append(bytes.Clone(v[:i]), b), v[i:]...)
			if _, _, _, _, ok := c.Parse(w, 42, nil); ok {
				t.Fatalf("cookie with %q at %d accepted: %q", b, i, w)
			}
		}
	}
	for name, tc := range map[string]struct {
		v   []byte
		key uint64
		c   *PinCookie
	}{
		"other key":    {v, 43, c},
		"other secret": {v, 42, NewPinCookie([]byte("other"))},
		"empty":        {nil, 42, c},
		"truncated":    {v[:len(v)-3], 42, c},
		"extra field":  {append(bytes.Clone(v), ".x"...), 42, c},
		"version 2":    {append([]byte("2"), v[1:]...), 42, c},
		"huge time":    {[]byte("1.99999999999999999.1.YQ.AAAAAAAAAAAAAAAAAAAAAA"), 42, c},
	} {
		if _, _, _, _, ok := tc.c.Parse(tc.v, tc.key, nil); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzPinCookie(f *testing.F) {
	c := NewPinCookie([]byte("fuzz secret"))
	f.Add(c.Append(nil, 7, "cell-a", 1e18, 1e18), uint64(7))
	f.Add([]byte("1.1.1.YQ.AAAAAAAAAAAAAAAAAAAAAA"), uint64(0))
	f.Add([]byte("...."), uint64(1))
	f.Fuzz(func(t *testing.T, v []byte, key uint64) {
		cell, assigned, seen, _, ok := c.Parse(v, key, nil)
		if !ok {
			return
		}
		// Anything accepted must be exactly what we would have signed.
		if w := c.Append(nil, key, string(cell), assigned, seen); !bytes.Equal(w, v) {
			t.Fatalf("accepted %q, which re-signs as %q", v, w)
		}
	})
}

func BenchmarkPinCookie(b *testing.B) {
	c := NewPinCookie([]byte("bench secret"))
	now := time.Now().UnixNano()
	v := c.Append(nil, 42, "stable-a", now, now)
	var buf, scratch []byte
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = c.Append(buf[:0], 42, "stable-a", now, now)
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ok bool
			if _, _, _, scratch, ok = c.Parse(v, 42, scratch); !ok {
				b.Fatal("rejected")
			}
		}
	})
}
