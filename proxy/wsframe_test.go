package proxy

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// encodeFrame builds one frame: fin/opcode byte b0, payload, optional mask
// key, with the shortest length encoding unless force says otherwise (0:
// shortest, 16 or 64: that extended length).
func encodeFrame(b0 byte, payload []byte, mask []byte, force int) []byte {
	var out []byte
	out = append(out, b0)
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	n := len(payload)
	switch {
	case force == 64 || (force == 0 && n > 0xffff):
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case force == 16 || (force == 0 && n > 125):
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|byte(n))
	}
	out = append(out, mask...)
	return append(out, payload...)
}

// boundaries feeds stream to a fresh tracker in pieces cut at cuts and
// returns the stream offsets that were frame boundaries, found with
// stop=true (the way the tunnel looks for one).
func boundaries(stream []byte, cuts []int) (offs []int, err error) {
	var f frameTracker
	pos := 0
	piece := func(b []byte) error {
		for len(b) > 0 {
			n, err := f.advance(b, true)
			if err != nil {
				return err
			}
			if n == 0 { // at a boundary already: step over it
				if !f.atBoundary() {
					panic("advance consumed nothing off a boundary")
				}
				n, err = f.advance(b[:1], false)
				if err != nil {
					return err
				}
			}
			pos += n
			b = b[n:]
			if f.atBoundary() && (len(offs) == 0 || offs[len(offs)-1] != pos) {
				offs = append(offs, pos)
			}
		}
		return nil
	}
	last := 0
	for _, c := range cuts {
		if c <= last || c >= len(stream) {
			continue
		}
		if err := piece(stream[last:c]); err != nil {
			return offs, err
		}
		last = c
	}
	return offs, piece(stream[last:])
}

func TestFrameTrackerBoundaries(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("x"), 70000)
	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"empty text", [][]byte{encodeFrame(0x81, nil, nil, 0)}},
		{"small text", [][]byte{encodeFrame(0x81, []byte("hello"), nil, 0)}},
		{"125 bytes, 7-bit length", [][]byte{encodeFrame(0x82, big[:125], nil, 0)}},
		{"126 bytes, 16-bit length", [][]byte{encodeFrame(0x82, big[:126], nil, 0)}},
		{"65535 bytes, 16-bit length", [][]byte{encodeFrame(0x82, big[:65535], nil, 0)}},
		{"65536+ bytes, 64-bit length", [][]byte{encodeFrame(0x82, big, nil, 0)}},
		{"non-minimal 16-bit length", [][]byte{encodeFrame(0x81, []byte("hi"), nil, 16)}},
		{"non-minimal 64-bit length", [][]byte{encodeFrame(0x81, []byte("hi"), nil, 64)}},
		{"masked (client to server)", [][]byte{encodeFrame(0x81, []byte("hi"), mask, 0), encodeFrame(0x82, big[:300], mask, 0)}},
		{"fragmented message with a ping between", [][]byte{
			encodeFrame(0x01, []byte("frag1"), nil, 0),
			encodeFrame(0x89, []byte("ping"), nil, 0),
			encodeFrame(0x80, []byte("frag2"), nil, 0),
		}},
		{"compressed (RSV1) frames pass", [][]byte{encodeFrame(0xc1, []byte{0xf2, 0x48, 0x00}, nil, 0)}},
		{"close frame", [][]byte{appendCloseFrame(nil, 1000, "bye")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stream []byte
			var want []int
			for _, f := range tc.frames {
				stream = append(stream, f...)
				want = append(want, len(stream))
			}
			whole, err := boundaries(stream, nil)
			if err != nil || !slices.Equal(whole, want) {
				t.Fatalf("whole: boundaries %v err %v, want %v", whole, err, want)
			}
			var bytewise []int
			for i := range stream {
				bytewise = append(bytewise, i)
			}
			got, err := boundaries(stream, bytewise)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("byte by byte: boundaries %v err %v, want %v", got, err, want)
			}
		})
	}
}

func TestFrameTrackerRefusesHugeLength(t *testing.T) {
	h := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	var f frameTracker
	if _, err := f.advance(h, false); err != errFrameLength {
		t.Fatalf("err %v, want errFrameLength", err)
	}
	if f.atBoundary() {
		t.Fatal("a broken tracker claims a boundary")
	}
	if n, err := f.advance([]byte("more"), true); n != 4 || err == nil {
		t.Fatalf("after breaking: n %d err %v, want all bytes and an error", n, err)
	}
}

func TestCloseFrame(t *testing.T) {
	got := appendCloseFrame(nil, closeServiceRestart, "x")
	want := []byte{0x88, 3, 0x03, 0xf4, 'x'}
	if !bytes.Equal(got, want) {
		t.Fatalf("close frame % x, want % x", got, want)
	}
	long := appendCloseFrame(nil, closeGoingAway, string(bytes.Repeat([]byte("r"), 300)))
	if len(long) != 2+125 || long[1] != 125 {
		t.Fatalf("long reason: frame of %d bytes, length byte %d; want a 125-byte payload", len(long), long[1])
	}
}

// FuzzFrameTracker checks the tracker against the frames it is fed: for a
// stream of frames built from the input, the boundaries found are exactly
// the frames' ends however the stream is cut into reads; for the raw input
// as a stream, feeding it whole, in pieces or byte by byte agrees.
func FuzzFrameTracker(f *testing.F) {
	f.Add([]byte("\x81\x05hello"), uint64(1))
	f.Add([]byte("\x82\x7e\x00\x80"), uint64(7))
	f.Add([]byte("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), uint64(3))
	f.Add([]byte("\x81\x82\x01\x02\x03\x04hi\x88\x02\x03\xe8"), uint64(99))
	f.Add([]byte("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), uint64(5))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>1|1))
		// 1. Frames built from data: boundaries are known.
		var stream []byte
		var want []int
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(rest[0])*int(rest[0])) // 0 … 65025: all three length encodings
			payload := rest[:n]
			rest = rest[min(len(rest), max(n, 1)):]
			var mask []byte
			if r.IntN(2) == 0 {
				mask = []byte{byte(r.Uint32()), 2, 3, 4}
			}
			stream = append(stream, encodeFrame(byte(r.Uint32()), payload, mask, []int{0, 16, 64}[r.IntN(3)]*btoi(n <= 0xffff))...)
			want = append(want, len(stream))
		}
		cuts := randomCuts(r, len(stream))
		got, err := boundaries(stream, cuts)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("built stream: boundaries %v err %v, want %v", got, err, want)
		}
		// 2. data itself as a stream: the cut does not change the answer.
		whole, errWhole := boundaries(data, nil)
		pieces, errPieces := boundaries(data, randomCuts(r, len(data)))
		if (errWhole == nil) != (errPieces == nil) || !slices.Equal(whole, pieces) {
			t.Fatalf("raw stream: whole %v (%v), in pieces %v (%v)", whole, errWhole, pieces, errPieces)
		}
		for i := 1; i < len(whole); i++ {
			if whole[i] <= whole[i-1] || whole[i] > len(data) {
				t.Fatalf("boundaries out of order or range: %v", whole)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// randomCuts picks sorted cut points in (0, n).
func randomCuts(r *rand.Rand, n int) []int {
	if n < 2 {
		return nil
	}
	cuts := make([]int, r.IntN(min(n, 16)))
	for i := range cuts {
		cuts[i] = 1 + r.IntN(n-1)
	}
	slices.Sort(cuts)
	return slices.Compact(cuts)
}
