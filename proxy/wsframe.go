package proxy

import (
	"encoding/binary"
	"errors"
)

// frameTracker follows WebSocket frame boundaries in one direction of a
// tunnel, so that a close frame of the proxy's own can be put between two
// frames instead of into the middle of one. It reads frame headers only
// (RFC 6455 §5.2) and counts payload bytes past without looking at them:
// payloads are never unmasked, decompressed or copied, and extensions (the
// RSV bits) and opcodes are not judged — the endpoints do that.
//
// The zero value is at a boundary, before the first frame.
type frameTracker struct {
	hdr    [maxFrameHeader]byte // the header being read, while have > 0
	have   int                  // header bytes read so far
	remain uint64               // payload bytes left in the current frame
	broken bool                 // a header was invalid; boundaries are unknown
}

// maxFrameHeader is the longest frame header: 2 bytes, a 64-bit extended
// length and a 4-byte masking key (RFC 6455 §5.2).
const maxFrameHeader = 2 + 8 + 4

// errFrameLength is a 64-bit payload length with its most significant bit
// set, which RFC 6455 §5.2 forbids. Nothing after it can be framed.
var errFrameLength = errors.New("websocket frame: 64-bit payload length with the high bit set")

// atBoundary reports whether the bytes fed so far end exactly between two
// frames (or before the first).
func (f *frameTracker) atBoundary() bool { return !f.broken && f.have == 0 && f.remain == 0 }

// advance feeds b and returns how many of its bytes it consumed: all of
// them, unless stop is set, in which case it stops right after the first
// frame boundary it reaches (consuming nothing when already at one). After
// an error the tracker is broken and consumes everything.
func (f *frameTracker) advance(b []byte, stop bool) (int, error) {
	n := 0
	for n < len(b) {
		if stop && f.atBoundary() {
			return n, nil
		}
		if f.broken {
			return len(b), errFrameLength
		}
		if f.remain > 0 {
			k := uint64(len(b) - n)
			k = min(k, f.remain)
			f.remain -= k
			n += int(k)
			continue
		}
		k, err := f.header(b[n:])
		n += k
		if err != nil {
			f.broken = true
			return len(b), err
		}
	}
	return n, nil
}

// header reads header bytes from b until the header is complete or b is
// used up, and returns how many it took. A complete header sets remain; a
// frame with an empty payload is a boundary at once.
func (f *frameTracker) header(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		f.hdr[f.have] = b[n]
		f.have++
		n++
		if f.have < 2 {
			continue
		}
		need := headerLen(f.hdr[1])
		if f.have < need {
			continue
		}
		length, err := payloadLen(f.hdr[:need])
		f.have = 0
		if err != nil {
			return n, err
		}
		f.remain = length
		return n, nil
	}
	return n, nil
}

// headerLen is the length of a frame header whose second byte is b1: the
// mask bit says whether a 4-byte key follows, the 7-bit length whether a
// 16-bit (126) or 64-bit (127) extended length does.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// payloadLen decodes the payload length of a complete header h.
func payloadLen(h []byte) (uint64, error) {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4])), nil
	case 127:
		v := binary.BigEndian.Uint64(h[2:10])
		if v>>63 != 0 {
			return 0, errFrameLength
		}
		return v, nil
	default:
		return uint64(l), nil
	}
}

// WebSocket close codes the proxy sends (RFC 6455 §7.4.1; 1012 from the
// IANA WebSocket Close Code Number Registry).
const (
	// closeGoingAway: this proxy is going away (drain, handover) or the
	// tunnel sat idle too long.
	closeGoingAway = 1001
	// closeServiceRestart: the cell behind the tunnel lost its traffic (a
	// revert, an abort, a blue/green switch, a weight set to 0); reconnect
	// and be routed to the cell that now serves you.
	closeServiceRestart = 1012
)

// appendCloseFrame appends an unmasked close frame (server to client, RFC
// 6455 §5.5.1) with code and reason. The reason is cut to 123 bytes so the
// frame stays a control frame (payload ≤ 125); the proxy's reasons are short
// ASCII, so the cut never splits a UTF-8 sequence.
func appendCloseFrame(b []byte, code uint16, reason string) []byte {
	reason = reason[:min(len(reason), 123)]
	b = append(b, 0x88, byte(2+len(reason))) // FIN | opcode 8
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, reason...)
}
