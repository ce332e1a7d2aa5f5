package accesslog

import (
	"bytes"
	"encoding/hex"
	"hash"
	"strconv"
	"time"
	"unicode/utf8"
)

// formatter turns entries into JSON lines. It belongs to the writer
// goroutine: its HMAC state and scratch are not safe for concurrent use.
type formatter struct {
	mac   hash.Hash // HMAC-SHA256 keyed with the node secret
	sum   []byte
	query bool
	// rollouts names the rollout holding each cell; nil: none.
	rollouts map[string]Rollout
}

// appendEntry appends e as one JSON object and a newline. Field names are
// the contract (README "Access log"); absent optional fields are left out
// so a line stays short.
func (f *formatter) appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","duration_us":`...)
	b = strconv.AppendInt(b, e.Duration.Microseconds(), 10)
	b = append(b, `,"ttfb_us":`...)
	b = strconv.AppendInt(b, e.TTFB.Microseconds(), 10)
	b = appendKey(b, "method")
	b = appendString(b, e.Method)
	b = appendKey(b, "host")
	b = appendString(b, e.Host)
	b = appendKey(b, "path")
	b = appendString(b, f.path(e.Path))
	b = appendKey(b, "protocol")
	b = append(b, '"')
	b = append(b, e.Protocol.String()...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	if e.GRPCStatus >= 0 {
		b = append(b, `,"grpc_status":`...)
		b = strconv.AppendInt(b, int64(e.GRPCStatus), 10)
	}
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	if e.Client.IsValid() {
		b = append(b, `,"client":"`...)
		b = e.Client.AppendTo(b)
		b = append(b, '"')
	}
	b = f.appendRouting(b, e)
	b = f.appendIDs(b, e)
	return append(b, "}\n"...)
}

// appendRouting appends where the request went and why.
func (f *formatter) appendRouting(b []byte, e *Entry) []byte {
	if e.Cell != "" {
		b = appendKey(b, "cell")
		b = appendStr(b, e.Cell)
		b = appendKey(b, "version")
		b = appendStr(b, e.Version)
		if r, ok := f.rollouts[e.Cell]; ok {
			b = appendKey(b, "rollout")
			b = appendStr(b, r.ID)
			b = append(b, `,"step":`...)
			b = strconv.AppendInt(b, int64(r.Step), 10)
		}
	}
	if e.Endpoint != "" {
		b = appendKey(b, "endpoint")
		b = appendStr(b, e.Endpoint)
	}
	if len(e.Flags) > 0 {
		b = appendKey(b, "flags")
		b = appendString(b, e.Flags)
	}
	b = appendBool(b, "pinned", e.Pinned)
	b = appendBool(b, "overridden", e.Overridden)
	b = appendBool(b, "retried", e.Retried)
	if e.Error != "" {
		b = appendKey(b, "error")
		b = appendStr(b, e.Error)
	}
	return b
}

// appendIDs appends the trace id, the request id and the sticky key's
// keyed hash.
func (f *formatter) appendIDs(b []byte, e *Entry) []byte {
	if e.TraceID != ([16]byte{}) {
		b = append(b, `,"trace_id":"`...)
		b = hex.AppendEncode(b, e.TraceID[:])
		b = append(b, '"')
	}
	if len(e.RequestID) > 0 {
		b = appendKey(b, "request_id")
		b = appendString(b, e.RequestID)
	}
	if len(e.StickyKey) > 0 && f.mac != nil {
		f.mac.Reset()
		f.mac.Write(e.StickyKey)
		f.sum = f.mac.Sum(f.sum[:0])
		b = append(b, `,"key_hmac":"`...)
		b = hex.AppendEncode(b, f.sum[:16]) // 128 bits: no collisions among a log's keys
		b = append(b, '"')
	}
	return b
}

// path is the request target as logged: without its query unless the
// config keeps queries (they carry personal data: emails, tokens, ids).
func (f *formatter) path(p []byte) []byte {
	if f.query {
		return p
	}
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

func appendKey(b []byte, k string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func appendBool(b []byte, k string, v bool) []byte {
	if !v {
		return b
	}
	b = appendKey(b, k)
	return append(b, "true"...)
}

func appendStr(b []byte, s string) []byte { return appendJSONString(b, s) }

func appendString(b []byte, s []byte) []byte { return appendJSONString(b, s) }

// appendJSONString appends s as a JSON string (RFC 8259 §7): quotes,
// backslashes and control characters escaped, and every byte that is not
// part of valid UTF-8 replaced by U+FFFD, so any request bytes — a client
// controls the path, the host and the ids — make a line that parses. '<',
// '>' and '&' are escaped too, so a line pasted into HTML stays inert.
func appendJSONString[S []byte | string](b []byte, s S) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeRune decodes the first rune of s without converting s (a copy of
// at most 4 bytes goes through utf8.DecodeRune).
func decodeRune[S []byte | string](s S) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(buf[:n])
}
