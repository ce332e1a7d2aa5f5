// Package tracectx reads and writes W3C Trace Context's traceparent field
// (https://www.w3.org/TR/trace-context/, §3.2): the trace a request
// belongs to and the span that sent it. It is outside input, parsed
// strictly: a value that is not exactly right is not a trace context, and
// a proxy that starts traces replaces it rather than pass on a guess.
package tracectx

import "encoding/hex"

// TraceParent is one parsed traceparent value.
type TraceParent struct {
	Version  byte
	TraceID  [16]byte
	ParentID [8]byte
	Flags    byte // bit 0: sampled
}

// Len is the length of a version-00 traceparent value.
const Len = 55

// Sampled reports the sampled flag: the caller may have recorded its span,
// and asks the next hop to record too.
func (t TraceParent) Sampled() bool { return t.Flags&1 != 0 }

// Parse parses a traceparent value (§3.2.2–3.2.4): two lowercase hex
// digits of version (ff is invalid), then trace-id (32 hex digits, not all
// zero), parent-id (16, not all zero) and trace-flags (2), joined by '-'.
// Version 00 is exactly 55 bytes; a later version may carry more after a
// '-', which is ignored (§3.2.4 "versioning").
func Parse(v []byte) (TraceParent, bool) {
	var t TraceParent
	if len(v) < Len || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return t, false
	}
	if !lowerHex(v[0:2]) || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:55]) {
		return t, false
	}
	hex.Decode(t.TraceID[:], v[3:35])
	hex.Decode(t.ParentID[:], v[36:52])
	var b [1]byte
	hex.Decode(b[:], v[0:2])
	t.Version = b[0]
	hex.Decode(b[:], v[53:55])
	t.Flags = b[0]
	switch {
	case t.Version == 0xff:
		return t, false
	case t.Version == 0 && len(v) != Len:
		return t, false
	case len(v) > Len && v[Len] != '-':
		return t, false
	case t.TraceID == [16]byte{} || t.ParentID == [8]byte{}:
		return t, false
	}
	return t, true
}

// lowerHex reports whether b is all lowercase hex digits (§3.2.2: "HEXDIGLC").
func lowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// AppendTo appends t as a version-00 value (a proxy sends the version it
// speaks, §3.2.4).
func (t TraceParent) AppendTo(b []byte) []byte {
	b = append(b, '0', '0', '-')
	b = hex.AppendEncode(b, t.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, t.ParentID[:])
	b = append(b, '-')
	return hex.AppendEncode(b, []byte{t.Flags})
}

// New starts a trace: random trace-id and parent-id from rnd (never all
// zero), sampled as asked.
func New(rnd func() uint64, sampled bool) TraceParent {
	var t TraceParent
	for t.TraceID == [16]byte{} {
		putUint64(t.TraceID[:8], rnd())
		putUint64(t.TraceID[8:], rnd())
	}
	for t.ParentID == [8]byte{} {
		putUint64(t.ParentID[:], rnd())
	}
	if sampled {
		t.Flags = 1
	}
	return t
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}
