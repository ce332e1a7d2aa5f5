//go:build linux

package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/internal/ows"
)

// The loop's request head was read twice: the front door's Validator
// frames and checks it, then fasthttp's parser read it again into
// ctx.Request.Header for the shared request path (route, headInfo,
// appendRequestHead, the access log, spans). For a simple head, the second
// read is replaced by setting fasthttp's header from one scan of the
// validated bytes: the method, target and Host through its setters and
// every other field through AddBytesKV, which stores it as the parser
// would (a non-special name in order, User-Agent and Connection as its
// special fields). The header then reads as the parser's would through
// every accessor the request path uses (Peek, All, Cookie, Host,
// ConnectionClose, IsHTTP11…), except two: RawHeaders, which the loop
// passes to appendRequestHead itself, and ContentLength, which says 0 for
// no body where the parser says -2 (setting -2 through fasthttp's API costs
// a Transfer-Encoding field added and deleted; the loop reads the length
// as the request's bodyLen, where only -1, chunked, is told apart, and the
// loop serves no chunked request). FuzzLoopFraming checks the two paths
// against each other on arbitrary heads.

// simpleHead sets h (just reset, normalising off) from msg, a whole
// request the front door accepted, when the request is simple: HTTP/1.1,
// an origin-form target, a method of capital letters, exactly one
// non-empty Host, no body and none of the fields that decide framing or
// the core (Content-Length, Transfer-Encoding, Upgrade, Expect,
// Content-Type — gRPC), Cookie (fasthttp collects cookies lazily from its
// own list) or Trailer, and field values of visible ASCII, SP and HTAB. It
// returns the field lines as fasthttp's RawHeaders would (the lines after
// the request line, with the empty line). Otherwise it reports false and
// h is left partly set: the caller resets it and parses as before.
func simpleHead(h *fasthttp.RequestHeader, msg []byte) (raw []byte, ok bool) {
	if !bytes.HasSuffix(msg, headTerm) {
		return nil, false // a body follows the head
	}
	eol := bytes.IndexByte(msg, '\n')
	if eol < 2 || msg[eol-1] != '\r' {
		return nil, false
	}
	line := msg[:eol-1]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !capitals(line[:sp]) {
		return nil, false
	}
	method, rest := line[:sp], line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || rest[0] != '/' || string(rest[sp+1:]) != "HTTP/1.1" {
		return nil, false
	}
	h.SetMethodBytes(method)
	h.SetRequestURIBytes(rest[:sp])
	raw = msg[eol+1:]
	host, conn := false, false
	for fields := raw; len(fields) > 2; {
		end := bytes.IndexByte(fields, '\n')
		if end < 1 || fields[end-1] != '\r' {
			return nil, false
		}
		f := fields[:end-1]
		fields = fields[end+1:]
		colon := bytes.IndexByte(f, ':')
		if colon <= 0 {
			return nil, false
		}
		k, v := f[:colon], ows.Trim(f[colon+1:])
		if !plainValue(v) {
			return nil, false
		}
		switch {
		case equalFold(k, hdrHost):
			if host || len(v) == 0 {
				return nil, false
			}
			host = true
			h.SetHostBytes(v)
		case notSimple(k):
			return nil, false
		case equalFold(k, hdrConnection):
			// AddBytesKV sets Connection where the parser appends it: one
			// field reads alike, a second would not.
			if conn {
				return nil, false
			}
			conn = true
			h.AddBytesKV(k, v)
		default:
			h.AddBytesKV(k, v)
		}
	}
	return raw, host
}

// notSimpleFields are the names that send a head to fasthttp's parser.
var notSimpleFields = [][]byte{
	[]byte("Content-Length"), hdrTE, []byte("Upgrade"), hdrExpect,
	[]byte("Content-Type"), []byte("Cookie"), []byte("Trailer"),
}

func notSimple(k []byte) bool { return namedIn(k, notSimpleFields) }

// capitals reports whether b is A–Z only (GET, HEAD, DELETE…).
func capitals(b []byte) bool {
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// plainValue reports whether v holds visible ASCII, SP and HTAB only.
func plainValue(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}
