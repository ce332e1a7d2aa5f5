package gossip

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		m    message
	}{
		{"document", message{Type: msgDocument, Key: "ranker-v2", From: "n1", Payload: []byte("gen 4")}},
		{"empty payload", message{Type: msgLeave, From: "n3"}},
		{"sli kilobytes", message{Type: msgSLI, From: "node-a", Payload: bytes.Repeat([]byte{0xfe}, 8<<10)}},
		{"health view", message{Type: msgHealth, From: "n2", Payload: []byte(`{"seq":1}`)}},
		{"max key", message{Type: msgState, Key: strings.Repeat("k", maxNameLen), From: "n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeMessage(encodeMessage(tc.m))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Type != tc.m.Type || got.Key != tc.m.Key || got.From != tc.m.From || !bytes.Equal(got.Payload, tc.m.Payload) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.m)
			}
		})
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	valid := encodeMessage(message{Type: msgDocument, Key: "k", From: "n1", Payload: []byte("x")})
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"one byte", []byte{wireVersion}},
		{"wrong version", append([]byte{9}, valid[1:]...)},
		{"type zero", []byte{wireVersion, 0, 0, 0}},
		{"unknown type", []byte{wireVersion, 99, 0, 0}},
		{"key longer than frame", []byte{wireVersion, byte(msgDocument), 5, 'a'}},
		{"key over limit", append([]byte{wireVersion, byte(msgDocument), 0x81, 0x08}, make([]byte, 2000)...)},
		{"truncated varint", []byte{wireVersion, byte(msgDocument), 0x80}},
		{"missing from", []byte{wireVersion, byte(msgDocument), 1, 'k'}},
		{"huge varint", []byte{wireVersion, byte(msgSLI), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeMessage(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode(%x) = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

// FuzzDecodeMessage checks that the decoder never panics on peer input and
// that whatever it accepts re-encodes to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(message{Type: msgDocument, Key: "ranker-v2", From: "n1", Payload: []byte{1, 2, 3}}))
	f.Add(encodeMessage(message{Type: msgLeave, From: "n2"}))
	f.Add([]byte{wireVersion, byte(msgSLI), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if len(m.Key) > maxNameLen || len(m.From) > maxNameLen {
			t.Fatalf("accepted over-long name: key %d, from %d", len(m.Key), len(m.From))
		}
		// Uvarints have non-minimal encodings, so compare decoded values.
		again, err := decodeMessage(encodeMessage(m))
		if err != nil || again.Type != m.Type || again.Key != m.Key || again.From != m.From || !bytes.Equal(again.Payload, m.Payload) {
			t.Fatalf("re-encode of %+v gave %+v, %v", m, again, err)
		}
	})
}

func BenchmarkDecodeMessage(b *testing.B) {
	for _, size := range []int{64, 1024, 8 << 10} {
		frame := encodeMessage(message{Type: msgDocument, Key: "ranker-v2", From: "node-17", Payload: make([]byte, size)})
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := decodeMessage(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
